//! Agreement with NeuroKit2 0.2.13 (issue 3). Reference values: SIGNALS.md §6.1 and
//! `fixtures/reference/neurokit2-0.2.13.json` (made by `fixtures/reference/make_reference.py`).

use crate::util::{fixture, read_recording};
use attune::dsp::hrv::time_domain;
use attune::recording::Record;

/// `want` was printed with `decimals` decimals: agree to within half of its last digit.
fn printed(got: f64, want: f64, decimals: i32, what: &str) {
    let tol = 0.5 * 10f64.powi(-decimals) + 1e-12 * want.abs();
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs NeuroKit2 {want} (printed to {decimals} decimals)"
    );
}

#[test]
fn hrv_time_on_the_pyhrv_series_matches_signals_r1() {
    let (_, records) = read_recording(&fixture("pyhrv-short-rr.attune.ndjson"));
    let rri: Vec<f64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk(c) => Some(c.samples.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let t = time_domain(&rri).unwrap();
    // SIGNALS.md §6.1 R1 (NeuroKit2 0.2.13, printed to 6 decimals).
    for (got, want, what) in [
        (t.mean_nn, 888.955490, "MeanNN"),
        (t.sdnn, 95.690354, "SDNN"),
        (t.rmssd, 101.300634, "RMSSD"),
        (t.sdsd, 101.451714, "SDSD"),
        (t.pnn50, 48.367953, "pNN50"),
        (t.pnn20, 78.931751, "pNN20"),
        (t.median_nn, 867.0, "MedianNN"),
        (
            t.mad_nn,
            69.682200,
            "MadNN (printed 69.6822: 4 decimals, checked below)",
        ),
        (t.iqr_nn, 102.0, "IQRNN"),
        (t.min_nn, 719.0, "MinNN"),
        (t.max_nn, 1195.0, "MaxNN"),
        (t.hti, 12.035714, "HTI"),
        (t.cvnn, 0.107644, "CVNN"),
    ] {
        let decimals = if what.starts_with("MadNN") { 4 } else { 6 };
        printed(got, want, decimals, what);
    }
}
