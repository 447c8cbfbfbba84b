//! One skin conductance response: a Bateman function (difference of two exponentials), the
//! standard SCR shape of Benedek & Kaernbach's two-compartment model (Benedek M, Kaernbach C.
//! Decomposition of skin conductance data by means of nonnegative deconvolution.
//! *Psychophysiology* 2010;47:647), scaled to a peak amplitude in µS.
//!
//! Each response gets its own shape from two drawn times: the **rise time** (onset to peak,
//! physiological 0.5–5 s, Braithwaite et al. 2013) and the **half-recovery time** (peak to half
//! the amplitude, 2–10 s, Dawson, Schell & Filion 2007, recalled), coupled so that the log rise
//! time explains 55 % of the variance of the log half-recovery time (R² = 0.55, *Skin Res
//! Technol*, 40 subjects). The two time constants of the Bateman function are solved from the
//! two times: the ratio half-recovery / rise depends only on τ_decay / τ_rise, so a table of that
//! ratio (built once) is inverted and τ_rise then scales the shape.
//!
//! A response is added to the signal over its own span only (onset to 14 decay time constants,
//! where it has fallen below 10⁻⁴ of its peak even for the slowest, gamma-like shapes), so cost
//! is O(samples + Σ span).

use std::sync::OnceLock;

/// The smallest ratio half-recovery / rise a Bateman function can have (τ_decay → τ_rise, a
/// gamma-like shape u·e^(−u)); shorter half-recoveries are lengthened to it.
pub const MIN_RATIO: f64 = 1.70;

/// One SCR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scr {
    /// Onset, s.
    pub onset_s: f64,
    /// Peak amplitude above the local level, µS.
    pub amp_us: f64,
    /// Rise time constant, s.
    pub tau_rise_s: f64,
    /// Decay time constant, s.
    pub tau_decay_s: f64,
    /// Peak of the unscaled kernel (normalisation).
    norm: f64,
}

/// Table of (ln ρ, half-recovery/rise ratio) for ρ = τ_decay/τ_rise on a log grid.
fn table() -> &'static [(f64, f64)] {
    static T: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    T.get_or_init(|| {
        let n = 240;
        let (lo, hi) = (1.0005_f64.ln(), 3000.0_f64.ln());
        (0..n)
            .map(|i| {
                let lr = lo + (hi - lo) * i as f64 / (n - 1) as f64;
                let rho = lr.exp();
                let (tp, th) = times_unit(rho);
                (lr, th / tp)
            })
            .collect()
    })
}

/// Rise (onset→peak) and half-recovery (peak→half) times of the kernel with τ_rise = 1 and
/// τ_decay = ρ.
fn times_unit(rho: f64) -> (f64, f64) {
    let g = |u: f64| (-u / rho).exp() - (-u).exp();
    let tp = rho.ln() * rho / (rho - 1.0);
    let half = 0.5 * g(tp);
    let (mut a, mut b) = (tp, tp + 20.0 * rho + 20.0);
    for _ in 0..80 {
        let m = 0.5 * (a + b);
        if g(m) > half {
            a = m;
        } else {
            b = m;
        }
    }
    (tp, 0.5 * (a + b) - tp)
}

impl Scr {
    /// An SCR with onset `onset_s`, peak `amp_us`, rise time `rise_s` (onset to peak) and
    /// half-recovery time `half_s` (peak to half amplitude; at least [`MIN_RATIO`]·`rise_s`).
    pub fn new(onset_s: f64, amp_us: f64, rise_s: f64, half_s: f64) -> Self {
        let rise_s = rise_s.max(0.05);
        let ratio = (half_s / rise_s).max(MIN_RATIO);
        let t = table();
        // Ratios increase with ρ: find the bracketing grid points and interpolate in ln ρ.
        let k = t.partition_point(|&(_, r)| r < ratio).clamp(1, t.len() - 1);
        let (l0, r0) = t[k - 1];
        let (l1, r1) = t[k];
        let w = ((ratio - r0) / (r1 - r0)).clamp(0.0, 1.0);
        let rho = (l0 + w * (l1 - l0)).exp();
        let tp_unit = rho.ln() * rho / (rho - 1.0);
        let tau_rise_s = rise_s / tp_unit;
        let tau_decay_s = rho * tau_rise_s;
        let norm = (-tp_unit / rho).exp() - (-tp_unit).exp();
        Self {
            onset_s,
            amp_us,
            tau_rise_s,
            tau_decay_s,
            norm,
        }
    }

    /// The response `u` s after its onset, µS.
    pub fn value_at(&self, u: f64) -> f64 {
        if u <= 0.0 {
            return 0.0;
        }
        self.amp_us * ((-u / self.tau_decay_s).exp() - (-u / self.tau_rise_s).exp()) / self.norm
    }

    /// Rise time (onset to peak), s.
    pub fn rise_s(&self) -> f64 {
        let rho = self.tau_decay_s / self.tau_rise_s;
        self.tau_rise_s * rho.ln() * rho / (rho - 1.0)
    }

    /// Adds the response to `x` (samples from t = 0 at `fs`), over its own span only.
    pub fn add_to(&self, x: &mut [f64], fs: f64) {
        let start = (self.onset_s * fs).ceil().max(0.0) as usize;
        let end = ((self.onset_s + 14.0 * self.tau_decay_s) * fs)
            .ceil()
            .max(0.0) as usize;
        let end = end.min(x.len());
        for (i, v) in x.iter_mut().enumerate().take(end).skip(start) {
            *v += self.value_at(i as f64 / fs - self.onset_s);
        }
    }
}

/// Half-recovery time of `scr` measured on its curve, s (for tests and the notes).
pub fn half_recovery_s(scr: &Scr) -> f64 {
    let rho = scr.tau_decay_s / scr.tau_rise_s;
    times_unit(rho).1 * scr.tau_rise_s
}
