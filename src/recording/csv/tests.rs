//! Tests of `csv`.

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
#[test]
fn the_fast_path_parses_like_str_parse() {
    let mut cells: Vec<String> = [
        "0",
        "-0",
        "5.",
        ".5",
        "-.5",
        "1e5",
        "1E-5",
        "2.5e+3",
        "1e22",
        "1e-22",
        "1e23",
        "123456789012345678",
        "1234567890123456789",
        "12345678901234567890",
        "9007199254740993",
        "0.7320610371107795",
        "-0.00012345678901234567",
        "1e0000",
        "1e308",
        "1e-320",
        "4.9e-324",
        "1.7976931348623157e308",
        "0.1",
        "0.3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let v = f64::from_bits(state);
        if v.is_finite() {
            cells.push(format!("{v}"));
            cells.push(format!("{v:e}"));
            cells.push(format!("{:.17}", v / 1e300));
        }
        cells.push(format!("{}", (state >> 11) as f64 / (1u64 << 53) as f64));
    }
    for c in &cells {
        for line in [
            format!("{c}\n"),
            format!("{c}\r\n"),
            c.clone(),
            format!("{c},x\n"),
        ] {
            if let Some((v, next)) = fast_cell(line.as_bytes(), 0, b',') {
                let want: f64 = c.parse().unwrap();
                assert_eq!(v.to_bits(), want.to_bits(), "{c:?}");
                assert_eq!(next, line.len(), "{line:?}");
            }
        }
    }
    for bad in [
        "", "-", ".", "1e", "1e+", "+1", " 1", "1 ", "inf", "1e99999", "1\r", "1,\"x\"",
    ] {
        assert!(fast_cell(bad.as_bytes(), 0, b',').is_none(), "{bad:?}");
    }
}

#[test]
fn two_halves_read_like_one_pass() {
    let mut text = String::from("\n\necg\n");
    let mut want = Vec::new();
    for i in 0..200_000u32 {
        let v = f64::from(i) * 0.001_234_567_890_123 - 17.0;
        match i % 1000 {
            7 => text.push('\n'),
            9 => {
                text.push_str("NaN\n");
                want.push(f64::NAN);
            }
            11 => {
                text.push_str(&format!(" {v} \r\n"));
                want.push(v);
            }
            _ => {
                text.push_str(&format!("{v}\n"));
                want.push(v);
            }
        }
    }
    assert!(text.len() > PARALLEL_MIN_BYTES);
    let c = read_column(&text, None).unwrap();
    assert_eq!(c.values.len(), want.len());
    assert!(
        c.values
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(c.missing, 200);
    // An error in the second half names its line in the whole file.
    let lines: Vec<&str> = text.lines().collect();
    let bad_line = lines.len() - 10;
    let mut broken: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    broken[bad_line] = "oops".into();
    let broken = broken.join("\n");
    assert_eq!(
        read_column(&broken, None).unwrap_err(),
        CsvError::NotANumber {
            line: bad_line + 1,
            column: "ecg".into(),
            cell: "oops".into()
        }
    );
}
