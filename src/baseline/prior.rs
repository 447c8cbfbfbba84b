//! The population prior: what resting adults look like, for a participant without a baseline.
//!
//! Pure constants. Each feature is scored in its *scoring scale* ([`crate::baseline::score`]):
//! heart rate in bpm, RMSSD and SCL in natural logarithms (their spread between and within
//! people is multiplicative), the SCR rate in SCRs per minute (scored as a count). For each
//! feature the prior gives the resting centre, the spread **between** people (how far a calm
//! stranger may sit from the centre) and the spread **within** a person at rest over tens of
//! minutes (the smallest scale a personal baseline may claim).
//!
//! | feature | centre | between people (SD) | within a person (SD) | source |
//! |---|---|---|---|---|
//! | `hr_bpm` | 70 bpm | 10 bpm | 3.0 bpm (10 s means) | resting HR of adults ≈ 70 ± 10 bpm (Nunan et al. 2010, *PACE* 33:1407, mean RR ≈ 926 ms across 44 studies, recalled; population surveys report similar means); within: the real RR fixtures' 10 s window-mean SD 3.8–5.5 bpm, simulated cohort 3.5 (docs/evaluation.md) |
//! | `rmssd_ms` | ln 38 ms | 0.40 ln | 0.20 ln (60 s windows) | Nunan et al. 2010: short-term RMSSD 19–75 ms, 42 ± 15 ms; within: the real long RR fixture's 5-min RMSSD ranges 50–86 ms over an hour |
//! | `scl_us` | ln 5 µS | 0.60 ln | 0.08 ln (10 s means) | palmar SCL 2–20 µS (Dawson, Schell & Filion 2007, *Handbook of Psychophysiology*, recalled); within: assumption — electrode settling (5–30 % over the first minutes) and tonic drift (3–10 %) of a seated session; a smaller floor gave false alarms at rest on the cohort |
//! | `scr_per_min` | 2 /min | – (a count) | – | non-specific SCRs 1–3 per minute at rest (Dawson et al. 2007; SIGNALS.md §5) |
//!
//! These are norms for *seated rest*. A participant scored against the prior is scored against
//! strangers, so the policy treats such scores as weak evidence (`baseline: "population"`): it
//! never escalates on them and eases off only on clear, agreeing evidence.

/// One feature of the prior, in its scoring scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorFeature {
    /// Resting centre.
    pub center: f64,
    /// Spread between resting people (SD).
    pub between_sd: f64,
    /// Spread within one resting person over tens of minutes (SD); 0 for counts.
    pub within_sd: f64,
}

/// The prior, in [`crate::features::FEATURE_NAMES`] order.
pub const POPULATION: [PriorFeature; 4] = [
    PriorFeature {
        center: 70.0,
        between_sd: 10.0,
        within_sd: 3.0,
    },
    PriorFeature {
        // ln 38 ms
        center: 3.637_586_159_726_386,
        between_sd: 0.40,
        within_sd: 0.20,
    },
    PriorFeature {
        // ln 5 µS
        center: 1.609_437_912_434_100_3,
        between_sd: 0.60,
        within_sd: 0.08,
    },
    PriorFeature {
        center: 2.0,
        between_sd: 0.0,
        within_sd: 0.0,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_are_the_cited_norms() {
        assert!((POPULATION[1].center.exp() - 38.0).abs() < 1e-9);
        assert!((POPULATION[2].center.exp() - 5.0).abs() < 1e-9);
        for p in POPULATION {
            assert!(p.between_sd >= p.within_sd);
        }
    }
}
