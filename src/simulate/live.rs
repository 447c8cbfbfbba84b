//! Live simulated participants: what simulated devices deliver, in the order it would arrive.
//!
//! Pure: a [`LiveSpec`] in, an endless sequence of [`Delivery`]s (engine [`Chunk`]s stamped with
//! their arrival time) out; no clock, no I/O. [`crate::sources::simulate`] paces them on the
//! session clock. The same spec gives the same deliveries on every machine.
//!
//! **Physiology** is the batch simulator's ([`super`]; its module doc gives the model and the
//! parameter ranges, which are plausible adult ranges chosen by hand, not fitted to a dataset;
//! a later issue calibrates the cohort to published norms, SIGNALS.md §5.1). The person is
//! `Person::draw` on the seed, so `--simulate` with seed `s` is the same person as
//! `attune simulate --seed s`; the per-beat and per-sample steps (`Heart`, `TonicDrift`, `Scr`,
//! `tonic_level`, `measure_eda` in [`super`]) are the same functions, run incrementally: RR = 60000/HR + RSA + 0.1 Hz Mayer wave + AR(1) wander +
//! jitter, quantised to 1/1024 s; EDA = tonic level + slow drift (32 Hz grid) + Bateman SCRs
//! (Poisson onsets, each cut off after 8 decay constants) + 3 nS noise, rounded to 0.1 nS.
//! The sample values differ from a batch recording with the same seed, because each process
//! draws from its own ChaCha8 stream (`set_stream`): heart, tonic drift, SCRs, EDA noise, and
//! each stream's delivery jitter. So enabling, disabling or re-timing one stream never changes
//! the other's values. Scenario: [`Scenario::Rest`], or [`Scenario::RestThenStress`] with the
//! onset at [`LiveSpec::stress_onset_s`]; stress ramps in and then stays on.
//!
//! **Time.** `t` is true session time, s. Beats happen, and EDA sample `i` is taken, at true
//! times (`i / eda_rate_hz`). Each stream's device clock reads
//! `(1 + drift_ppm·1e-6)·t + offset_s` ([`StreamTiming`]). Chunk times are device times
//! (rounded to 1 µs): RR as [`Timing::Events`], one per beat; EDA as [`Timing::Uniform`] with
//! `t0` = device time of the block's first sample and the *nominal* rate, so clock drift shows
//! as `t0` moving (within one block, `t0 + j/rate` is off the device clock by at most
//! `drift·block_s`, 1 ms at 100 ppm and 10 s). RR values are the true intervals: a 100 ppm
//! rate error is 0.1 ms per beat, under the 1/1024 s resolution.
//!
//! **Delivery.** EDA arrives in blocks of `round(block_s · rate)` samples; RR beats are
//! batched per `block_s` window of true time (beats in `((k−1)·block_s, k·block_s]` form one
//! notification; a window without a beat sends nothing; `block_s` = 0 sends one per beat).
//! A delivery arrives (`host_t`, session time, rounded to 1 µs) at the true time its last
//! sample was taken + `latency_s` + U(0, `jitter_s`), and never before the stream's previous
//! delivery (a link delivers in order). The streams are merged by arrival (ties: RR first, as
//! in the batch simulator), so `host_t` never decreases. `seq` counts from 0 per stream.
//!
//! **Cost.** O(1) work per sample (plus one term per SCR still decaying, about 1–6) and
//! bounded memory: one pending delivery per stream, the decaying SCRs and nothing else
//! ([`LiveSim::buffered`]). Values outside a spec's valid ranges ([`LiveSpec::check`]) are
//! replaced by safe ones (a block is capped at [`MAX_BLOCK_S`]), so the generator never
//! panics nor stalls.

use super::{
    DRIFT_HZ, Heart, Person, Scenario, Scr, TonicDrift, eda_noise, measure_eda, round_us, scr_gap,
    tonic_level,
};
use crate::engine::input::StreamInfo;
use crate::model::{Chunk, ParticipantId, StreamKind, Timing};
use crate::recording::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// How one simulated stream's device clock and delivery behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamTiming {
    /// Device clock minus session time at the session start, s (−10: the device clock is 10 s
    /// behind the host's).
    pub offset_s: f64,
    /// Device clock rate error, parts per million (+: the device clock runs fast).
    pub drift_ppm: f64,
    /// Steady transport latency added to every arrival, s.
    pub latency_s: f64,
    /// Extra arrival delay, uniform in 0..`jitter_s`, drawn per delivery, s.
    pub jitter_s: f64,
    /// Delivery period, s: EDA arrives in blocks of this length; RR values are batched into
    /// one notification per period (a BLE strap notifies about once a second with the beats
    /// since the last one).
    pub block_s: f64,
}

/// A live simulated source for one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSpec {
    /// Whose data.
    pub participant: ParticipantId,
    /// Picks the person and every random draw.
    pub seed: u64,
    /// What happens.
    pub scenario: Scenario,
    /// With [`Scenario::RestThenStress`]: session time of the stress onset, s.
    pub stress_onset_s: f64,
    /// RR stream timing; `None`: no RR stream.
    pub rr: Option<StreamTiming>,
    /// EDA stream timing; `None`: no EDA stream.
    pub eda: Option<StreamTiming>,
    /// EDA sampling rate, Hz.
    pub eda_rate_hz: f64,
}

/// The longest delivery block, s.
pub const MAX_BLOCK_S: f64 = 60.0;
/// The most EDA samples in one block.
const MAX_BLOCK_SAMPLES: f64 = 65_536.0;

/// Why a [`LiveSpec`] is not usable as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveSpecError {
    /// Neither stream is enabled.
    #[error("simulated participant {0} has no streams: enable rr or eda")]
    NoStreams(ParticipantId),
    /// A value is out of range.
    #[error("simulated participant {participant}: {what} must be {valid}, got {value}")]
    OutOfRange {
        /// Whose spec.
        participant: ParticipantId,
        /// Which value (`eda.block_s`).
        what: &'static str,
        /// The valid range, in words.
        valid: &'static str,
        /// The value given.
        value: f64,
    },
}

impl LiveSpec {
    /// The seed used when none is given: a stable hash of the participant id (FNV-1a 64), so
    /// `--simulate p01` is the same person on every run and machine.
    pub fn default_seed(participant: &ParticipantId) -> u64 {
        participant
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    }

    /// Checks every value against its valid range.
    pub fn check(&self) -> Result<(), LiveSpecError> {
        if self.rr.is_none() && self.eda.is_none() {
            return Err(LiveSpecError::NoStreams(self.participant.clone()));
        }
        let bad = |what, valid, value| LiveSpecError::OutOfRange {
            participant: self.participant.clone(),
            what,
            valid,
            value,
        };
        let within = |x: f64, lo: f64, hi: f64| x.is_finite() && x >= lo && x <= hi;
        let rate = self.eda_rate_hz;
        if self.eda.is_some() && !(within(rate, 0.0, 10_000.0) && rate > 0.0) {
            return Err(bad("eda_rate_hz", "in (0, 10000] Hz", rate));
        }
        let onset = self.stress_onset_s;
        if self.scenario == Scenario::RestThenStress && !within(onset, 0.0, f64::MAX) {
            return Err(bad("stress_onset_s", "a time >= 0 s", onset));
        }
        let streams = [
            (
                [
                    "rr.offset_s",
                    "rr.drift_ppm",
                    "rr.latency_s",
                    "rr.jitter_s",
                    "rr.block_s",
                ],
                self.rr,
            ),
            (
                [
                    "eda.offset_s",
                    "eda.drift_ppm",
                    "eda.latency_s",
                    "eda.jitter_s",
                    "eda.block_s",
                ],
                self.eda,
            ),
        ];
        for (i, (names, t)) in streams.into_iter().enumerate() {
            let Some(t) = t else { continue };
            let [off, ppm, lat, jit, block] = names;
            let checks = [
                (
                    off,
                    t.offset_s,
                    within(t.offset_s, f64::MIN, f64::MAX),
                    "finite",
                ),
                (
                    ppm,
                    t.drift_ppm,
                    within(t.drift_ppm, -1e4, 1e4),
                    "within ±10000 ppm",
                ),
                (
                    lat,
                    t.latency_s,
                    within(t.latency_s, 0.0, f64::MAX),
                    "finite and >= 0 s",
                ),
                (
                    jit,
                    t.jitter_s,
                    within(t.jitter_s, 0.0, f64::MAX),
                    "finite and >= 0 s",
                ),
                match i {
                    0 => (
                        block,
                        t.block_s,
                        within(t.block_s, 0.0, MAX_BLOCK_S),
                        "in [0, 60] s",
                    ),
                    _ => (
                        block,
                        t.block_s,
                        within(t.block_s, 0.0, MAX_BLOCK_S) && t.block_s > 0.0,
                        "in (0, 60] s",
                    ),
                },
            ];
            if let Some((what, value, _, valid)) = checks.into_iter().find(|c| !c.2) {
                return Err(bad(what, valid, value));
            }
        }
        Ok(())
    }
}

/// One delivery: the chunk as it arrives, and the true times of its first and last sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The chunk; `host_t` is its arrival time, sample times are device times.
    pub chunk: Chunk,
    /// True session time of the first sample, s.
    pub first_true_t: f64,
    /// True session time of the last sample, s.
    pub last_true_t: f64,
}

/// ChaCha8 stream numbers. Stream 0 draws the person, exactly as the batch simulator does.
const RNG_HEART: u64 = 1;
const RNG_DRIFT: u64 = 2;
const RNG_SCR: u64 = 3;
const RNG_NOISE: u64 = 4;
const RNG_RR_LINK: u64 = 5;
const RNG_EDA_LINK: u64 = 6;

fn rng_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() { x } else { fallback }
}

/// A device clock: reading = rate·t + offset.
#[derive(Debug, Clone, Copy)]
struct DeviceClock {
    rate: f64,
    offset: f64,
}

impl DeviceClock {
    fn new(t: &StreamTiming) -> Self {
        let rate = 1.0 + finite_or(t.drift_ppm, 0.0).clamp(-10_000.0, 10_000.0) * 1e-6;
        Self {
            rate,
            offset: finite_or(t.offset_s, 0.0),
        }
    }
    fn device(&self, t: f64) -> f64 {
        self.rate * t + self.offset
    }
}

/// A stream's transport: latency, jitter, in-order delivery, sequence numbers.
#[derive(Debug, Clone)]
struct Link {
    latency: f64,
    jitter: f64,
    rng: ChaCha8Rng,
    last: f64,
    seq: u64,
}

impl Link {
    fn new(t: &StreamTiming, rng: ChaCha8Rng) -> Self {
        Self {
            latency: finite_or(t.latency_s, 0.0).max(0.0),
            jitter: finite_or(t.jitter_s, 0.0).max(0.0),
            rng,
            last: f64::NEG_INFINITY,
            seq: 0,
        }
    }

    /// Arrival time of a delivery whose last sample was taken at `t`; the next seq.
    fn send(&mut self, t: f64) -> (f64, u64) {
        let j = if self.jitter > 0.0 {
            self.rng.random_range(0.0..self.jitter)
        } else {
            0.0
        };
        self.last = round_us(t + self.latency + j).max(self.last);
        self.seq += 1;
        (self.last, self.seq - 1)
    }
}

/// The RR stream: beats, batched into notifications.
#[derive(Debug, Clone)]
struct RrStream {
    clock: DeviceClock,
    link: Link,
    block: f64,
    heart: Heart,
    rng: ChaCha8Rng,
    /// The next beat (true time, RR ms), not yet delivered.
    next: (f64, f64),
}

impl RrStream {
    fn new(t: &StreamTiming, seed: u64, p: &Person, onset: Option<f64>) -> Self {
        let mut rng = rng_stream(seed, RNG_HEART);
        let mut heart = Heart::new(&mut rng, p);
        let rr = heart.next_rr(&mut rng, p, 0.0, onset);
        let block = finite_or(t.block_s, 0.0).clamp(0.0, MAX_BLOCK_S);
        Self {
            clock: DeviceClock::new(t),
            link: Link::new(t, rng_stream(seed, RNG_RR_LINK)),
            block,
            heart,
            rng,
            next: (rr / 1000.0, rr),
        }
    }

    fn window(&self, t: f64) -> f64 {
        (t / self.block).ceil()
    }

    fn deliver(&mut self, p: &Person, onset: Option<f64>, who: &ParticipantId) -> Delivery {
        let first = self.next.0;
        let (mut times, mut values) = (Vec::new(), Vec::new());
        loop {
            let (beat, rr) = self.next;
            times.push(round_us(self.clock.device(beat)));
            values.push(rr);
            let rr = self.heart.next_rr(&mut self.rng, p, beat, onset);
            self.next = (beat + rr / 1000.0, rr);
            if self.block <= 0.0 || self.window(self.next.0) != self.window(beat) {
                let (host_t, seq) = self.link.send(beat);
                return Delivery {
                    chunk: Chunk {
                        raw: None,
                        meta: None,
                        participant: who.clone(),
                        kind: StreamKind::Rr,
                        seq,
                        host_t,
                        timing: Timing::Events(times),
                        samples: values,
                    },
                    first_true_t: first,
                    last_true_t: beat,
                };
            }
        }
    }
}

/// The EDA stream: samples, delivered in blocks.
#[derive(Debug, Clone)]
struct EdaStream {
    clock: DeviceClock,
    link: Link,
    fs: f64,
    block: usize,
    /// Index of the next sample.
    i: u64,
    drift: TonicDrift,
    drift_rng: ChaCha8Rng,
    /// Grid steps taken, and the drift after the last one.
    drift_steps: u64,
    drift_now: f64,
    scr_rng: ChaCha8Rng,
    /// The next SCR, not yet started (`None`: no more, the rate was invalid).
    next_scr: Option<Scr>,
    /// SCRs started and still decaying, in onset order.
    active: Vec<Scr>,
    noise: Normal<f64>,
    noise_rng: ChaCha8Rng,
}

impl EdaStream {
    fn new(t: &StreamTiming, fs: f64, seed: u64, p: &Person, onset: Option<f64>) -> Self {
        let block = (finite_or(t.block_s, 1.0).clamp(0.0, MAX_BLOCK_S) * fs)
            .round()
            .clamp(1.0, MAX_BLOCK_SAMPLES) as usize;
        let mut scr_rng = rng_stream(seed, RNG_SCR);
        let next_scr = Self::draw_scr(&mut scr_rng, p, 0.0, onset);
        Self {
            clock: DeviceClock::new(t),
            link: Link::new(t, rng_stream(seed, RNG_EDA_LINK)),
            fs,
            block,
            i: 0,
            drift: TonicDrift::default(),
            drift_rng: rng_stream(seed, RNG_DRIFT),
            drift_steps: 0,
            drift_now: 0.0,
            scr_rng,
            next_scr,
            active: Vec::new(),
            noise: eda_noise(),
            noise_rng: rng_stream(seed, RNG_NOISE),
        }
    }

    fn draw_scr(rng: &mut ChaCha8Rng, p: &Person, t: f64, onset: Option<f64>) -> Option<Scr> {
        let t = t + scr_gap(rng, p, t, onset).filter(|g| g.is_finite())?;
        Some(Scr::draw(rng, p, t, onset))
    }

    fn sample(&mut self, p: &Person, onset: Option<f64>) -> f64 {
        let t = self.i as f64 / self.fs;
        let k = (t * DRIFT_HZ).floor() as u64;
        while self.drift_steps <= k {
            self.drift_now = self.drift.step(&mut self.drift_rng);
            self.drift_steps += 1;
        }
        let mut v = tonic_level(p, self.drift_now, t, onset);
        while let Some(scr) = self.next_scr {
            if (scr.t * self.fs).ceil() > self.i as f64 {
                break;
            }
            self.active.push(scr);
            self.next_scr = Self::draw_scr(&mut self.scr_rng, p, scr.t, onset);
        }
        let (i, fs) = (self.i as f64, self.fs);
        self.active.retain(|s| i < s.end_index(fs));
        for s in &self.active {
            v += s.value(t);
        }
        self.i += 1;
        measure_eda(v, self.noise.sample(&mut self.noise_rng))
    }

    fn deliver(&mut self, p: &Person, onset: Option<f64>, who: &ParticipantId) -> Delivery {
        let first = self.i as f64 / self.fs;
        let samples: Vec<f64> = (0..self.block).map(|_| self.sample(p, onset)).collect();
        let last = (self.i - 1) as f64 / self.fs;
        let (host_t, seq) = self.link.send(last);
        Delivery {
            chunk: Chunk {
                raw: None,
                meta: None,
                participant: who.clone(),
                kind: StreamKind::Eda,
                seq,
                host_t,
                timing: Timing::Uniform {
                    t0: round_us(self.clock.device(first)),
                    rate_hz: self.fs,
                },
                samples,
            },
            first_true_t: first,
            last_true_t: last,
        }
    }
}

/// A live simulated participant: an endless, deterministic sequence of deliveries.
#[derive(Debug, Clone)]
pub struct LiveSim {
    participant: ParticipantId,
    person: Person,
    onset: Option<f64>,
    eda_rate_hz: f64,
    rr: Option<(RrStream, Option<Delivery>)>,
    eda: Option<(EdaStream, Option<Delivery>)>,
}

impl LiveSim {
    /// The simulator for `spec` (out-of-range values replaced by safe ones: module doc).
    pub fn new(spec: &LiveSpec) -> Self {
        let person = Person::draw(&mut ChaCha8Rng::seed_from_u64(spec.seed));
        let onset = match spec.scenario {
            Scenario::RestThenStress => Some(finite_or(spec.stress_onset_s, 0.0).max(0.0)),
            Scenario::Rest => None,
        };
        let fs = spec.eda_rate_hz;
        let fs = if fs.is_finite() && fs > 0.0 {
            fs.min(10_000.0)
        } else {
            32.0
        };
        Self {
            rr: spec
                .rr
                .map(|t| (RrStream::new(&t, spec.seed, &person, onset), None)),
            eda: spec
                .eda
                .map(|t| (EdaStream::new(&t, fs, spec.seed, &person, onset), None)),
            participant: spec.participant.clone(),
            person,
            onset,
            eda_rate_hz: fs,
        }
    }

    /// The engine declarations of the enabled streams (RR first).
    pub fn streams(&self) -> Vec<StreamInfo> {
        let device = Device {
            conversion: None,
            name: "attune-simulator".into(),
            protocol: "synthetic".into(),
            firmware: None,
        };
        let rr = self.rr.as_ref().map(|_| (StreamKind::Rr, None));
        let eda = (self.eda.as_ref()).map(|_| (StreamKind::Eda, Some(self.eda_rate_hz)));
        [rr, eda]
            .into_iter()
            .flatten()
            .map(|(kind, rate_hz)| StreamInfo {
                participant: self.participant.clone(),
                kind,
                rate_hz,
                device: device.clone(),
            })
            .collect()
    }

    /// Ground truth: session time of the stress onset, s.
    pub fn stress_onset(&self) -> Option<f64> {
        self.onset
    }

    /// Ground truth: device time minus true time of stream `kind` at true time `t`, s.
    pub fn truth_offset(&self, kind: StreamKind, t: f64) -> Option<f64> {
        let clock = match kind {
            StreamKind::Rr => self.rr.as_ref().map(|s| s.0.clock),
            StreamKind::Eda => self.eda.as_ref().map(|s| s.0.clock),
            _ => None,
        }?;
        Some(clock.device(t) - t)
    }

    /// The next delivery in arrival order; `None` only when no stream is enabled.
    pub fn next_delivery(&mut self) -> Option<Delivery> {
        self.fill();
        let rr_t = self.rr.as_ref().and_then(|s| s.1.as_ref());
        let eda_t = self.eda.as_ref().and_then(|s| s.1.as_ref());
        let take_rr = match (rr_t, eda_t) {
            (Some(a), Some(b)) => a.chunk.host_t <= b.chunk.host_t,
            (a, _) => a.is_some(),
        };
        if take_rr {
            self.rr.as_mut().and_then(|s| s.1.take())
        } else {
            self.eda.as_mut().and_then(|s| s.1.take())
        }
    }

    /// Arrival time of the next delivery, s; `None` only when no stream is enabled.
    pub fn next_arrival(&mut self) -> Option<f64> {
        self.fill();
        let rr = self.rr.as_ref().and_then(|s| s.1.as_ref());
        let eda = self.eda.as_ref().and_then(|s| s.1.as_ref());
        let t = |d: Option<&Delivery>| d.map_or(f64::INFINITY, |d| d.chunk.host_t);
        let next = t(rr).min(t(eda));
        next.is_finite().then_some(next)
    }

    /// Appends, as [`Input::Chunk`](crate::engine::input::Input::Chunk)s, every delivery that
    /// arrives at or before session time `t`.
    pub fn until(&mut self, t: f64, out: &mut Vec<crate::engine::input::Input>) {
        while self.next_arrival().is_some_and(|a| a <= t) {
            if let Some(d) = self.next_delivery() {
                out.push(crate::engine::input::Input::Chunk(d.chunk));
            }
        }
    }

    /// Values held internally (pending deliveries' samples, decaying SCRs, by capacity): stays
    /// bounded however long the simulation runs.
    pub fn buffered(&self) -> usize {
        let pending = |d: &Option<Delivery>| d.as_ref().map_or(0, |d| d.chunk.samples.capacity());
        let rr = self.rr.as_ref().map_or(0, |s| pending(&s.1));
        let eda = self
            .eda
            .as_ref()
            .map_or(0, |s| pending(&s.1) + s.0.active.capacity());
        rr + eda
    }

    fn fill(&mut self) {
        let (p, onset, who) = (&self.person, self.onset, &self.participant);
        if let Some((s, slot @ None)) = &mut self.rr {
            *slot = Some(s.deliver(p, onset, who));
        }
        if let Some((s, slot @ None)) = &mut self.eda {
            *slot = Some(s.deliver(p, onset, who));
        }
    }
}

#[cfg(test)]
mod tests;
