//! CSV input for `attune analyze`: a header row, then one row per sample. Pure: parses text.
//!
//! The delimiter is taken from the header line (tab, `;` or `,`, first found in that order of
//! preference when present). A column is chosen by name (default: the first). Cells are numbers
//! in the column's unit; an empty cell or `NaN`/`nan` is a missing sample (NaN), which the
//! analysis fills as NeuroKit2 does and reports; anything else that is not a number is an error
//! naming the line and column. Rows with fewer cells than the chosen column are errors too.

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
    let names: Vec<&str> = header
        .split(delim)
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    let index = match wanted {
        None => 0,
        Some(w) => names
            .iter()
            .position(|n| *n == w)
            .ok_or_else(|| CsvError::NoColumn {
                wanted: w.to_owned(),
                available: names.join(", "),
            })?,
    };
    let name = names.get(index).copied().unwrap_or("").to_owned();
    let mut values = Vec::with_capacity(text.len() / 8);
    let mut missing = 0;
    let d = delim as u8;
    for (i, line) in lines {
        let bytes = line.as_bytes();
        let cell = if index == 0 {
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
                cells: line.split(delim).count(),
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
