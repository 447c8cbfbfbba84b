//! The heart model's stochastic building blocks, all stepped on a fixed grid:
//!
//! - [`Ou`]: an Ornstein–Uhlenbeck process (exact discretisation), used for the slow,
//!   multi-scale non-stationarity of heart rate, the wandering breathing rate and the wandering
//!   RSA amplitude.
//! - [`Resonator`]: a narrow-band stochastic oscillator (a complex Ornstein–Uhlenbeck process,
//!   i.e. a damped rotation driven by white noise, equivalent to an AR(2) resonator), used for
//!   the Mayer wave (~0.1 Hz baroreflex oscillation; Task Force 1996 LF band 0.04–0.15 Hz).
//!   Unlike a pure sine its phase and amplitude drift, so its spectral peak has a width
//!   (≈ 1/(π·τ) Hz full width at half maximum for damping time τ).
//!
//! Also the closed forms the person draw uses to calibrate amplitudes: the variance of
//! successive differences of a process sampled at the beat interval, and the share of an OU
//! process's (Lorentzian) power that falls in a frequency band.

use rand::Rng;
use rand_distr::StandardNormal;
use std::f64::consts::PI;

/// An Ornstein–Uhlenbeck process with stationary SD `sd` and time constant `tau_s`, stepped by
/// a fixed `dt`; starts from a draw of its stationary distribution.
#[derive(Debug, Clone)]
pub struct Ou {
    k: f64,
    step_sd: f64,
    /// Current value.
    pub x: f64,
}

impl Ou {
    /// A process started at a stationary draw.
    pub fn new<R: Rng>(rng: &mut R, sd: f64, tau_s: f64, dt: f64) -> Self {
        let k = (-dt / tau_s).exp();
        let z: f64 = rng.sample(StandardNormal);
        Self {
            k,
            step_sd: sd * (1.0 - k * k).sqrt(),
            x: sd * z,
        }
    }

    /// One step; returns the new value.
    pub fn step<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        self.x = self.k * self.x + self.step_sd * z;
        self.x
    }

    /// One step with a temporarily larger noise (`gain` ≥ 1 inflates the stationary SD).
    pub fn step_scaled<R: Rng>(&mut self, rng: &mut R, gain: f64) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        self.x = self.k * self.x + gain * self.step_sd * z;
        self.x
    }
}

/// A narrow-band stochastic oscillator: `z ← z·e^{(i2πf − 1/τ)dt} + noise`, whose real part has
/// stationary SD `sd`, centre frequency `f_hz` and damping time `tau_s`.
#[derive(Debug, Clone)]
pub struct Resonator {
    re: f64,
    im: f64,
    c: f64,
    s: f64,
    step_sd: f64,
}

impl Resonator {
    /// A resonator started at a stationary draw.
    pub fn new<R: Rng>(rng: &mut R, sd: f64, f_hz: f64, tau_s: f64, dt: f64) -> Self {
        let decay = (-dt / tau_s).exp();
        let w = 2.0 * PI * f_hz * dt;
        let (a, b): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        Self {
            re: sd * a,
            im: sd * b,
            c: decay * w.cos(),
            s: decay * w.sin(),
            step_sd: sd * (1.0 - decay * decay).sqrt(),
        }
    }

    /// One step; returns the real part.
    pub fn step<R: Rng>(&mut self, rng: &mut R) -> f64 {
        let (a, b): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        let re = self.c * self.re - self.s * self.im + self.step_sd * a;
        let im = self.s * self.re + self.c * self.im + self.step_sd * b;
        self.re = re;
        self.im = im;
        re
    }
}

/// Variance of successive differences of an OU process (variance `var`, time constant `tau_s`)
/// sampled every `t_s`: `2·var·(1 − e^{−t/τ})`.
pub fn ou_diff_var(var: f64, tau_s: f64, t_s: f64) -> f64 {
    2.0 * var * (1.0 - (-t_s / tau_s).exp())
}

/// Variance of successive differences of an oscillation at `f_hz` with variance `var` and
/// damping (coherence) time `tau_s` (infinite for a steady one), sampled every `t_s`:
/// `2·var·(1 − e^{−t/τ}·cos 2πft)`.
pub fn osc_diff_var(var: f64, f_hz: f64, tau_s: f64, t_s: f64) -> f64 {
    2.0 * var * (1.0 - (-t_s / tau_s).exp() * (2.0 * PI * f_hz * t_s).cos())
}

/// Share of an OU process's power (Lorentzian spectrum, time constant `tau_s`) in `[lo, hi)` Hz.
pub fn ou_band_share(tau_s: f64, lo: f64, hi: f64) -> f64 {
    let at = |f: f64| (2.0 * PI * f * tau_s).atan();
    2.0 / PI * (at(hi) - at(lo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn sd(x: &[f64]) -> f64 {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn processes_have_their_stationary_sd_and_the_diff_formulas_hold() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ou = Ou::new(&mut rng, 2.0, 5.0, 0.25);
        let x: Vec<f64> = (0..400_000).map(|_| ou.step(&mut rng)).collect();
        assert!((sd(&x) - 2.0).abs() < 0.1, "{}", sd(&x));
        let d: Vec<f64> = x.windows(4).step_by(4).map(|w| w[3] - w[0]).collect();
        let want = ou_diff_var(4.0, 5.0, 0.75).sqrt();
        assert!((sd(&d) - want).abs() / want < 0.05, "{} vs {want}", sd(&d));
        let mut r = Resonator::new(&mut rng, 3.0, 0.1, 20.0, 0.25);
        let y: Vec<f64> = (0..400_000).map(|_| r.step(&mut rng)).collect();
        assert!((sd(&y) - 3.0).abs() < 0.2, "{}", sd(&y));
        let d: Vec<f64> = y.windows(4).step_by(4).map(|w| w[3] - w[0]).collect();
        let want = osc_diff_var(9.0, 0.1, 20.0, 0.75).sqrt();
        assert!((sd(&d) - want).abs() / want < 0.05, "{} vs {want}", sd(&d));
        assert!((ou_band_share(5.0, 0.0, 1e9) - 1.0).abs() < 1e-6);
    }
}
