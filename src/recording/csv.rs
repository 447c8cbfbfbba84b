//! CSV input for `attune analyze`: a header row, then one row per sample. Pure: parses text.
//!
//! The delimiter is taken from the header line (tab, `;` or `,`, first found in that order of
//! preference when present). A column is chosen by name (default: the first). Cells are numbers
//! in the column's unit; an empty cell or `NaN`/`nan` is a missing sample (NaN), which the
//! analysis fills as NeuroKit2 does and reports; anything else that is not a number is an error
//! naming the line and column. Rows with fewer cells than the chosen column are errors too.
//! Quoted cells may contain the delimiter (`"2024-03-10, 12:00",5.0`); `""` inside quotes is
//! a quote. Blank lines are skipped, as pandas does: in a one-column file an empty cell is a
//! blank line, and so is not a missing sample.

/// Why a CSV could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// No header row.
    #[error("the file is empty (expected a header row, then one value per row)")]
    Empty,
    /// The requested column does not exist.
    #[error("no column named {wanted:?} (columns: {available})")]
    NoColumn {
        /// Requested.
        wanted: String,
        /// What the header has.
        available: String,
    },
    /// A cell is not a number.
    #[error("line {line}, column {column:?}: {cell:?} is not a number")]
    NotANumber {
        /// 1-based line.
        line: usize,
        /// Column name.
        column: String,
        /// The cell text (shortened).
        cell: String,
    },
    /// A row is too short.
    #[error("line {line} has {cells} cells; column {column:?} is cell {index}")]
    ShortRow {
        /// 1-based line.
        line: usize,
        /// Cells in the row.
        cells: usize,
        /// Column name.
        column: String,
        /// 1-based index of the column.
        index: usize,
    },
    /// The bytes are not UTF-8.
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    /// The header exists but no row follows.
    #[error("the file has a header but no data rows")]
    NoRows,
}

/// One column of a CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Values; NaN where the cell was empty or NaN.
    pub values: Vec<f64>,
    /// How many cells were missing.
    pub missing: usize,
}

/// Reads column `wanted` (or the first) from CSV text.
pub fn read_column(text: &str, wanted: Option<&str>) -> Result<Column, CsvError> {
    read_column_bytes(text.as_bytes(), wanted)
}

/// Reads column `wanted` (or the first) from the bytes of a CSV file, which must be UTF-8
/// ([`CsvError::NotUtf8`] otherwise, whatever else is wrong with the file).
///
/// A large body is checked and parsed in two halves on two threads (split at a line end, so
/// each half holds whole lines); the result is the same as one pass, including which error is
/// reported (the first in file order) and its line number.
pub fn read_column_bytes(bytes: &[u8], wanted: Option<&str>) -> Result<Column, CsvError> {
    read_split(bytes, wanted, 0.5, |_| None::<()>).map(|(c, _)| c)
}

/// Share of the body the calling thread parses in [`read_column_bytes_with`]: less than half,
/// so that `head` runs while the other thread is still parsing. Balanced for a `head` that
/// costs about a third of the parse per sample (the ECG forward high-pass: ≈ 6 ns against
/// ≈ 17 ns per row), 17 / (2·17 + 6) ≈ 0.42.
pub const HEAD_SHARE: f64 = 0.42;

/// [`read_column_bytes`], and `head` run on the values of the first part of a large body
/// while the rest is parsed on another thread (`None` without a second thread or when the
/// first part has an error). The column is the same as [`read_column_bytes`] gives.
pub fn read_column_bytes_with<R>(
    bytes: &[u8],
    wanted: Option<&str>,
    head: impl FnOnce(&[f64]) -> Option<R>,
) -> Result<(Column, Option<R>), CsvError> {
    read_split(bytes, wanted, HEAD_SHARE, head)
}

fn read_split<R>(
    bytes: &[u8],
    wanted: Option<&str>,
    share: f64,
    head: impl FnOnce(&[f64]) -> Option<R>,
) -> Result<(Column, Option<R>), CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // The header is the first non-blank line; `line` counts the lines before the body, as
    // `str::lines` would.
    let mut pos = 0;
    let mut line = 0;
    let header = loop {
        if pos >= bytes.len() {
            return Err(CsvError::Empty);
        }
        let (l, next) = next_line(bytes, pos);
        pos = next;
        line += 1;
        let l = utf8(l)?;
        if !l.trim().is_empty() {
            break l;
        }
    };
    let delim = [b'\t', b';', b',']
        .into_iter()
        .find(|d| header.as_bytes().contains(d))
        .unwrap_or(b',') as char;
    let names: Vec<String> = split_fields(header, delim);
    let body = &bytes[pos..];
    let index = match wanted {
        None => 0,
        Some(w) => match names.iter().position(|n| n == w) {
            Some(i) => i,
            None => {
                utf8(body)?;
                return Err(CsvError::NoColumn {
                    wanted: w.to_owned(),
                    available: names.join(", "),
                });
            }
        },
    };
    let name = names.get(index).cloned().unwrap_or_default();
    let rows = Rows {
        index,
        delim,
        name: &name,
    };
    let parse = |part: &[u8], capacity: usize| rows.parse(utf8(part)?, capacity);
    let (values, missing, head) = match split_at_line_end(body, share) {
        Some(mid) if body.len() >= PARALLEL_MIN_BYTES => {
            let (a, b) = body.split_at(mid);
            let (ra, rb, head) = std::thread::scope(|s| {
                let hb = s.spawn(|| parse(b, b.len() / 8));
                // The first part's vector receives the second's: room for both.
                let ra = parse(a, body.len() / 8);
                let head = ra.as_ref().ok().and_then(|p| head(&p.values));
                let rb = hb
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (ra, rb, head)
            });
            if matches!(ra, Err(CsvError::NotUtf8)) || matches!(rb, Err(CsvError::NotUtf8)) {
                return Err(CsvError::NotUtf8);
            }
            let mut a = ra.map_err(|e| e.shifted(line))?;
            let b = rb.map_err(|e| e.shifted(line + a.lines))?;
            a.values.extend_from_slice(&b.values);
            (a.values, a.missing + b.missing, head)
        }
        _ => {
            let a = parse(body, body.len() / 8).map_err(|e| e.shifted(line))?;
            (a.values, a.missing, None)
        }
    };
    if values.is_empty() {
        return Err(CsvError::NoRows);
    }
    Ok((
        Column {
            name,
            values,
            missing,
        },
        head,
    ))
}

/// Bodies shorter than this are parsed on one thread (a thread costs ≈ 20 µs).
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// `b` as text, or [`CsvError::NotUtf8`].
fn utf8(b: &[u8]) -> Result<&str, CsvError> {
    std::str::from_utf8(b).map_err(|_| CsvError::NotUtf8)
}

/// The line starting at byte `pos` of `text` (without its `\n` or `\r\n`, as `str::lines`
/// gives it) and the position after its end.
fn next_line(text: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &text[pos..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(e) => {
            let l = &rest[..e];
            (l.strip_suffix(b"\r").unwrap_or(l), pos + e + 1)
        }
        None => (rest, text.len()),
    }
}

/// A split point at about `share` of `b`, just after a `\n`, with lines on both sides.
fn split_at_line_end(b: &[u8], share: f64) -> Option<usize> {
    let at = ((b.len() as f64 * share) as usize).min(b.len());
    let nl = b.get(at..)?.iter().position(|&c| c == b'\n')?;
    let mid = at + nl + 1;
    (mid < b.len()).then_some(mid)
}

impl CsvError {
    /// Moves a line number given relative to a part of the file by `base` lines.
    fn shifted(mut self, base: usize) -> Self {
        if let Self::NotANumber { line, .. } | Self::ShortRow { line, .. } = &mut self {
            *line += base;
        }
        self
    }
}

/// How to read the data rows: which cell, split by what.
#[derive(Clone, Copy)]
struct Rows<'a> {
    index: usize,
    delim: char,
    name: &'a str,
}

/// What one run over a part of the body found.
struct Parsed {
    values: Vec<f64>,
    missing: usize,
    /// Lines in the part, blank ones included.
    lines: usize,
}

impl Rows<'_> {
    /// Parses the rows of `part` (whole lines); errors give lines counted from 1 in `part`.
    ///
    /// Most rows take the fast path: a plain decimal number that ends the line (or, for the
    /// first column, is followed by the delimiter in a line without quotes). Everything else
    /// goes down the general path, which is the reference behaviour.
    fn parse(&self, part: &str, capacity: usize) -> Result<Parsed, CsvError> {
        let bytes = part.as_bytes();
        let mut values = Vec::with_capacity(capacity);
        let mut missing = 0;
        let mut pos = 0;
        let mut lines = 0;
        let d = self.delim as u8;
        while pos < bytes.len() {
            lines += 1;
            if self.index == 0
                && let Some((v, next)) = fast_cell(bytes, pos, d)
            {
                values.push(v);
                pos = next;
                continue;
            }
            let (line, next) = next_line(bytes, pos);
            // A line of a `str` split at `\n` is a `str`.
            let line = &part[pos..pos + line.len()];
            pos = next;
            if line.trim().is_empty() {
                continue;
            }
            let v = self.cell(line, lines)?;
            if v.is_nan() {
                missing += 1;
            }
            values.push(v);
        }
        Ok(Parsed {
            values,
            missing,
            lines,
        })
    }

    /// The general path for one non-blank line (`line_no` counted from 1): the value, NaN
    /// for a missing cell.
    fn cell(&self, line: &str, line_no: usize) -> Result<f64, CsvError> {
        let (index, delim) = (self.index, self.delim);
        let d = delim as u8;
        let bytes = line.as_bytes();
        let quoted;
        let cell = if bytes.contains(&b'"') {
            quoted = split_fields(line, delim);
            quoted.get(index).map(String::as_str)
        } else if index == 0 {
            Some(match bytes.iter().position(|&b| b == d) {
                Some(p) => &line[..p],
                None => line,
            })
        } else {
            line.split(delim).nth(index)
        };
        let Some(cell) = cell else {
            return Err(CsvError::ShortRow {
                line: line_no,
                cells: split_fields(line, delim).len(),
                column: self.name.to_owned(),
                index: index + 1,
            });
        };
        let mut cell = cell.trim();
        if cell.starts_with('"') {
            cell = cell.trim_matches('"').trim();
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(v) if v.is_nan() => Ok(f64::NAN),
            _ if cell.is_empty() => Ok(f64::NAN),
            _ => Err(CsvError::NotANumber {
                line: line_no,
                column: self.name.to_owned(),
                cell: cell.chars().take(40).collect(),
            }),
        }
    }
}

/// Appends the decimal digits at `*i` to `m` (wrapping: the caller refuses more than 19
/// significant digits), eight at a time where it can; returns `m` and how many digits.
fn digits(b: &[u8], i: &mut usize, mut m: u64) -> (u64, u32) {
    let start = *i;
    while let Some(chunk) = b.get(*i..*i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        // All eight bytes in b'0'..=b'9' (the test of core's dec2flt).
        let a = v.wrapping_add(0x4646_4646_4646_4646);
        let z = v.wrapping_sub(0x3030_3030_3030_3030);
        if (a | z) & 0x8080_8080_8080_8080 != 0 {
            break;
        }
        // Their value, in three multiplications (core's dec2flt, after fast_float).
        let z = z.wrapping_mul(10).wrapping_add(z >> 8);
        const MASK: u64 = 0x0000_00FF_0000_00FF;
        let v1 = (z & MASK).wrapping_mul(0x000F_4240_0000_0064);
        let v2 = ((z >> 16) & MASK).wrapping_mul(0x0000_2710_0000_0001);
        let eight = u64::from((v1.wrapping_add(v2) >> 32) as u32);
        m = m.wrapping_mul(100_000_000).wrapping_add(eight);
        *i += 8;
    }
    while let Some(&c) = b.get(*i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        *i += 1;
    }
    (m, u32::try_from(*i - start).unwrap_or(u32::MAX))
}

/// Powers of ten as integers, up to 10^21.
const POW10_INT: [u128; 22] = {
    let mut t = [1u128; 22];
    let mut i = 1;
    while i < 22 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `m / 10^k` correctly rounded (`k` in 1..=21), when a cheap guess can be proved right; `None`
/// leaves it to `str::parse`. The guess `r = (m as f64) / 10^k` is within about one unit in the
/// last place; with `r = M·2^e` (53-bit `M`, not a power of two, so both neighbours are `2^e`
/// away) it is the correctly rounded value exactly when `|m/10^k − r| < 2^(e−1)`, i.e.
/// `(2M−1)·10^k < 2m·2^(−e) < (2M+1)·10^k`, which is checked in `u128` (every product is below
/// 2^125 for `m < 2^64`; ties and anything else out of reach give `None`).
fn checked_quotient(m: u64, k: usize) -> Option<f64> {
    let r = m as f64 / *POW10.get(k)?;
    let bits = r.to_bits();
    let exp = i64::try_from((bits >> 52) & 0x7ff).ok()?;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 || frac == 0 {
        return None;
    }
    let mant = u128::from(frac | (1 << 52));
    let shift = u32::try_from(1 - (exp - 1075)).ok()?;
    if shift + (64 - m.leading_zeros()) > 126 {
        return None;
    }
    let a = u128::from(m) << shift;
    let b = *POW10_INT.get(k)?;
    ((2 * mant - 1) * b < a && a < (2 * mant + 1) * b).then_some(r)
}

/// Exact powers of ten in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The fast path for the cell that starts line `pos`: `-?digits[.digits][(e|E)[+-]digits]`
/// with at least one mantissa digit (at most 19 significant), ending the line (`\n`, `\r\n` or
/// the end of the text), or followed by `delim` in a line without quotes. Only for the first
/// column. Returns the value and the start of the next line, or `None` (general path).
///
/// The value is bit-identical to `str::parse::<f64>`: when the significant digits fit in 2^53
/// and the power of ten is at most 22, both are exact in f64 and one IEEE multiplication or
/// division rounds correctly (Clinger's fast path); otherwise `str::parse` does the work on the
/// cell's text. Non-finite values take the general path (which refuses them).
fn fast_cell(b: &[u8], pos: usize, delim: u8) -> Option<(f64, usize)> {
    let mut i = pos;
    let neg = b.get(i) == Some(&b'-');
    i += usize::from(neg);
    // Leading zeros (of the integer part, then of the fraction when the integer part is all
    // zeros) add nothing to the mantissa; every digit after them is significant.
    let start = i;
    while b.get(i) == Some(&b'0') {
        i += 1;
    }
    let mut any_digit = i > start;
    let (mut m, int_sig) = digits(b, &mut i, 0);
    any_digit |= int_sig > 0;
    let mut sig = int_sig;
    let mut frac = 0i32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        if m == 0 {
            while b.get(i) == Some(&b'0') {
                i += 1;
            }
        }
        let (m2, n) = digits(b, &mut i, m);
        m = m2;
        sig += n;
        any_digit |= i > frac_start;
        frac = i32::try_from(i - frac_start).ok()?;
    }
    if !any_digit || sig > 19 {
        return None;
    }
    let mut e: i32 = 0;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(&c) = b.get(i) {
            let v = c.wrapping_sub(b'0');
            if v > 9 || i - start >= 4 {
                break;
            }
            e = e * 10 + i32::from(v);
            i += 1;
        }
        if i == start || b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        if eneg {
            e = -e;
        }
    }
    let end = i;
    let next = match b.get(i) {
        None => b.len(),
        Some(b'\n') => i + 1,
        Some(b'\r') if b.get(i + 1) == Some(&b'\n') => i + 2,
        Some(&c) if c == delim => {
            let rest = &b[i..];
            let nl = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            if rest[..nl].contains(&b'"') {
                return None;
            }
            (i + nl + 1).min(b.len())
        }
        _ => return None,
    };
    let e10 = e - frac;
    let v = if m == 0 {
        0.0
    } else if m <= 1 << 53 && (-22..=22).contains(&e10) {
        let p = POW10[e10.unsigned_abs() as usize];
        if e10 < 0 { m as f64 / p } else { m as f64 * p }
    } else if let Some(v) = (-21..0)
        .contains(&e10)
        .then(|| checked_quotient(m, e10.unsigned_abs() as usize))
        .flatten()
    {
        v
    } else {
        // The cell is ASCII, so this slice is on char boundaries.
        let s = std::str::from_utf8(&b[pos + usize::from(neg)..end]).ok()?;
        s.parse::<f64>().ok()?
    };
    if !v.is_finite() {
        return None;
    }
    Some((if neg { -v } else { v }, next))
}

/// Splits one line into trimmed fields, honouring double quotes (RFC 4180 style).
fn split_fields(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            c if c == delim && !in_quotes => out.push(std::mem::take(&mut cur).trim().to_owned()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

#[cfg(test)]
mod tests;
