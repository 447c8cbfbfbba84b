//! Butterworth filters as cascades of f64 biquads, primed to the first sample.
//!
//! An order-n Butterworth (n even) is exactly n/2 RBJ cookbook sections with
//! `Q_k = 1 / (2 cos θ_k)`, θ_k = (2k+1)π/(2n) (SIGNALS.md §1.1); biquad 0.6's
//! `Type::LowPass`/`Type::HighPass` compute those sections. Coefficients and state are f64
//! (SIGNALS.md §1.2: f32 state fails the 0.05 Hz EDA high-pass).
//!
//! Priming (SIGNALS.md §1.3, scipy's `sosfilt_zi(sos) * x0`): before the first sample the state
//! is set to the steady state for a constant input equal to that sample, so the cascade starts
//! without a step transient. [`Cascade::reset`] re-primes at the next sample (call it at a gap).
//!
//! Units: `fs` and `fc` in Hz; samples in whatever unit the stream has.

use biquad::{Biquad, Coefficients, DirectForm2Transposed, ToHertz, Type};

/// Filter response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Low-pass.
    Low,
    /// High-pass.
    High,
}

/// Why a filter could not be designed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The cutoff is not strictly between 0 and fs/2.
    #[error("cutoff {fc} Hz is outside (0, fs/2) for fs = {fs} Hz")]
    Cutoff {
        /// Cutoff, Hz.
        fc: f64,
        /// Sampling rate, Hz.
        fs: f64,
    },
    /// Only even orders 2..=8 are supported here.
    #[error("Butterworth order {0} is not supported (use 2, 4, 6 or 8)")]
    Order(usize),
}

/// A primed cascade of DF2T biquad sections.
#[derive(Debug, Clone)]
pub struct Cascade {
    coeffs: Vec<Coefficients<f64>>,
    sections: Vec<DirectForm2Transposed<f64>>,
    primed: bool,
}

impl Cascade {
    /// Designs an even-order Butterworth low- or high-pass at `fc` Hz for rate `fs` Hz.
    pub fn butterworth(pass: Pass, order: usize, fs: f64, fc: f64) -> Result<Self, FilterError> {
        if !((2..=8).contains(&order) && order.is_multiple_of(2)) {
            return Err(FilterError::Order(order));
        }
        if !(fs.is_finite() && fc.is_finite() && fc > 0.0 && fc < fs / 2.0) {
            return Err(FilterError::Cutoff { fc, fs });
        }
        let ty = match pass {
            Pass::Low => Type::LowPass,
            Pass::High => Type::HighPass,
        };
        let n = order as f64;
        let mut coeffs = Vec::with_capacity(order / 2);
        for k in 0..order / 2 {
            let theta = (2.0 * k as f64 + 1.0) * std::f64::consts::PI / (2.0 * n);
            let q = 1.0 / (2.0 * theta.cos());
            let c = Coefficients::<f64>::from_params(ty, fs.hz(), fc.hz(), q)
                .map_err(|_| FilterError::Cutoff { fc, fs })?;
            coeffs.push(c);
        }
        let sections = coeffs
            .iter()
            .map(|c| DirectForm2Transposed::new(*c))
            .collect();
        Ok(Self {
            coeffs,
            sections,
            primed: false,
        })
    }

    /// Sets every section to the steady state for a constant input `x0` (SIGNALS.md §1.3).
    pub fn prime(&mut self, x0: f64) {
        let mut u = x0;
        for (s, c) in self.sections.iter_mut().zip(&self.coeffs) {
            let den = 1.0 + c.a1 + c.a2;
            let gain = (c.b0 + c.b1 + c.b2) / den;
            let y = gain * u;
            s.s1 = (c.b1 + c.b2) * u - (c.a1 + c.a2) * y;
            s.s2 = c.b2 * u - c.a2 * y;
            u = y;
        }
        self.primed = true;
    }

    /// Filters one sample; the first sample after creation or [`reset`](Self::reset) primes.
    pub fn step(&mut self, x: f64) -> f64 {
        if !self.primed {
            self.prime(x);
        }
        self.sections.iter_mut().fold(x, |v, s| s.run(v))
    }

    /// Forgets the state; the next sample re-primes. Call at every gap.
    pub fn reset(&mut self) {
        self.primed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain_at(pass: Pass, order: usize, fs: f64, fc: f64, f: f64) -> f64 {
        let mut c = Cascade::butterworth(pass, order, fs, fc).unwrap();
        c.prime(0.0);
        let n = (fs * 200.0 / f.min(fc).max(0.05)) as usize;
        let n = n.clamp(20_000, 400_000);
        let mut peak: f64 = 0.0;
        for i in 0..n {
            let y = c.step((2.0 * std::f64::consts::PI * f * i as f64 / fs).sin());
            if i > n / 2 {
                peak = peak.max(y.abs());
            }
        }
        peak
    }

    #[test]
    fn butterworth_is_3db_down_at_cutoff() {
        // |H(fc)| = 1/sqrt(2) for any Butterworth order (analytic property).
        for (pass, order, fs, fc) in [
            (Pass::Low, 4, 32.0, 3.0),
            (Pass::High, 2, 32.0, 0.05),
            (Pass::Low, 2, 100.0, 10.0),
        ] {
            let g = gain_at(pass, order, fs, fc, fc);
            assert!(
                (g - std::f64::consts::FRAC_1_SQRT_2).abs() < 2e-3,
                "{pass:?} {order}: {g}"
            );
        }
    }

    #[test]
    fn order_four_lowpass_matches_the_bilinear_butterworth_magnitude() {
        // Digital Butterworth via the prewarped bilinear transform:
        // |H(f)| = 1/sqrt(1 + (tan(πf/fs)/tan(πfc/fs))^(2n)).
        let (fs, fc, f) = (1000.0, 10.0, 40.0);
        let g = gain_at(Pass::Low, 4, fs, fc, f);
        let w = (std::f64::consts::PI * f / fs).tan() / (std::f64::consts::PI * fc / fs).tan();
        let analytic = 1.0 / (1.0 + w.powi(8)).sqrt();
        assert!((g / analytic - 1.0).abs() < 0.005, "{g} vs {analytic}");
    }

    #[test]
    fn primed_filters_start_without_a_transient() {
        let mut lp = Cascade::butterworth(Pass::Low, 4, 32.0, 3.0).unwrap();
        let mut hp = Cascade::butterworth(Pass::High, 2, 32.0, 0.05).unwrap();
        for _ in 0..100 {
            assert!((lp.step(5.0) - 5.0).abs() < 1e-12);
            assert!(hp.step(5.0).abs() < 1e-12);
        }
        // After a reset, a new level primes again instead of ringing.
        hp.reset();
        assert!(hp.step(9.0).abs() < 1e-12);
    }

    #[test]
    fn bad_designs_are_errors() {
        assert!(Cascade::butterworth(Pass::Low, 4, 4.0, 3.0).is_err());
        assert!(Cascade::butterworth(Pass::Low, 3, 32.0, 3.0).is_err());
        assert!(Cascade::butterworth(Pass::High, 2, 32.0, 0.0).is_err());
    }
}
