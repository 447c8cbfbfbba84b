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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(CsvError::Empty)?;
    let delim = [b'\t', b';', b',']
        .into_iter()
        .find(|d| header.as_bytes().contains(d))
        .unwrap_or(b',') as char;
    let names: Vec<String> = split_fields(header, delim);
    let index = match wanted {
        None => 0,
        Some(w) => names
            .iter()
            .position(|n| n == w)
            .ok_or_else(|| CsvError::NoColumn {
                wanted: w.to_owned(),
                available: names.join(", "),
            })?,
    };
    let name = names.get(index).cloned().unwrap_or_default();
    let mut values = Vec::with_capacity(text.len() / 8);
    let mut missing = 0;
    let d = delim as u8;
    for (i, line) in lines {
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
                line: i + 1,
                cells: split_fields(line, delim).len(),
                column: name,
                index: index + 1,
            });
        };
        let mut cell = cell.trim();
        if cell.starts_with('"') {
            cell = cell.trim_matches('"').trim();
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => values.push(v),
            Ok(v) if v.is_nan() => {
                missing += 1;
                values.push(f64::NAN);
            }
            _ if cell.is_empty() => {
                missing += 1;
                values.push(f64::NAN);
            }
            _ => {
                return Err(CsvError::NotANumber {
                    line: i + 1,
                    column: name,
                    cell: cell.chars().take(40).collect(),
                });
            }
        }
    }
    if values.is_empty() {
        return Err(CsvError::NoRows);
    }
    Ok(Column {
        name,
        values,
        missing,
    })
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
mod tests {
    use super::*;

    #[test]
    fn picks_columns_and_counts_missing_cells() {
        let c = read_column("time,ecg\n0,1.5\n1,\n2,NaN\n3,-2e-1\n", Some("ecg")).unwrap();
        assert_eq!(c.values.len(), 4);
        assert_eq!(c.values[0], 1.5);
        assert!(c.values[1].is_nan() && c.values[2].is_nan());
        assert_eq!(c.values[3], -0.2);
        assert_eq!(c.missing, 2);
        let first = read_column("a;b\n1;2\n", None).unwrap();
        assert_eq!((first.name.as_str(), first.values[0]), ("a", 1.0));
        let tab = read_column("a\tb\n1\t2\n", Some("b")).unwrap();
        assert_eq!(tab.values, vec![2.0]);
    }

    #[test]
    fn quoted_cells_may_hold_the_delimiter() {
        let text = "\"timestamp\",\"ecg\",\"eda\"\r\n\"2024-03-10, 12:00:00.0\",0.1,5.0\r\n\"2024-03-10, 12:00:00.1\",0.2,\"5.5\"\r\n";
        let c = read_column(text, Some("eda")).unwrap();
        assert_eq!(c.values, vec![5.0, 5.5]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        assert_eq!(
            read_column("x\n1\nabc\n", None).unwrap_err().to_string(),
            "line 3, column \"x\": \"abc\" is not a number"
        );
        assert!(matches!(
            read_column("x\n1\ninf\n", None),
            Err(CsvError::NotANumber { .. })
        ));
        assert!(
            read_column("a,b\n1,2\n", Some("c"))
                .unwrap_err()
                .to_string()
                .contains("columns: a, b")
        );
        assert_eq!(read_column("", None), Err(CsvError::Empty));
        assert_eq!(read_column("x\n", None), Err(CsvError::NoRows));
        assert!(matches!(
            read_column("a,b\n1\n", Some("b")),
            Err(CsvError::ShortRow { line: 2, .. })
        ));
    }
}
