//! Host stalls: the tick timer firing late because the process did not run (a suspended
//! laptop, a swapping or overloaded host, a stopped process).
//!
//! Ticks never wait for data (see [`crate::engine`]): after a stall of `w` seconds the due ticks
//! are emitted at once, before the sources have delivered what arrived meanwhile, so features
//! can be missing for those ticks. In real time that is `w` seconds; at `--speed S` it is `S·w`
//! seconds of session time, which is why fast live runs on a busy machine show holes. A tick
//! late by 200 ms of real time or by 1 s of session time is a stall. The loop records each stall
//! here so `attune status` (`session.stalls`) can say when the host, not a
//! device, was the cause.

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;

/// A tick this late (real time) is a stall.
pub(super) const STALL_AFTER: Duration = Duration::from_millis(200);
/// A tick this late in session time is a stall too (at `--speed 100`, 10 ms of real time
/// leaves a 1 s hole, which a threshold in real time alone would not report).
const STALL_AFTER_SESSION_S: f64 = 1.0;
/// The most recent stalls kept for `attune status`.
const KEEP: usize = 256;

/// One stall: the session time of the tick that was due and the session time when it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stall {
    from_t: f64,
    to_t: f64,
    late: Duration,
}

/// Stalls seen so far.
#[derive(Debug, Default)]
pub(super) struct Stalls {
    count: u64,
    total: Duration,
    max: Duration,
    recent: VecDeque<Stall>,
}

impl Stalls {
    /// A tick due at session time `due_t` ran `late` after its instant, at session time `now_t`.
    pub(super) fn tick(&mut self, due_t: f64, now_t: f64, late: Duration) {
        if late < STALL_AFTER && now_t - due_t < STALL_AFTER_SESSION_S {
            return;
        }
        self.count += 1;
        self.total += late;
        self.max = self.max.max(late);
        if self.recent.len() == KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(Stall {
            from_t: due_t,
            to_t: now_t.max(due_t),
            late,
        });
    }

    /// `session.stalls` of `attune status`: `count`, `total_s` and `max_s` (real time), and
    /// `recent` (up to 256 `{from_t, to_t, late_s}`, session times).
    pub(super) fn json(&self) -> Value {
        let recent: Vec<Value> = self
            .recent
            .iter()
            .map(|s| json!({"from_t": s.from_t, "to_t": s.to_t, "late_s": s.late.as_secs_f64()}))
            .collect();
        json!({
            "count": self.count,
            "total_s": self.total.as_secs_f64(),
            "max_s": self.max.as_secs_f64(),
            "recent": recent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_late_ticks_count_and_the_recent_list_is_bounded() {
        let mut s = Stalls::default();
        s.tick(1.0, 1.0, Duration::from_millis(5));
        assert_eq!(s.json()["count"], 0);
        // At --speed 100, 15 ms late is 1.5 s of session time: a stall.
        s.tick(2.0, 3.5, Duration::from_millis(15));
        assert_eq!(s.json()["count"], 1);
        s = Stalls::default();
        let n = KEEP as u32 + 8;
        for i in 0..n {
            let t = f64::from(i) * 10.0;
            s.tick(t, t + 4.0, Duration::from_millis(300 + u64::from(i)));
        }
        let j = s.json();
        assert_eq!(j["count"], u64::from(n));
        assert_eq!(j["recent"].as_array().unwrap().len(), KEEP);
        assert_eq!(j["recent"][0]["from_t"], 80.0);
        assert_eq!(j["recent"][0]["to_t"], 84.0);
        let max = f64::from(300 + n - 1) / 1000.0;
        assert!((j["max_s"].as_f64().unwrap() - max).abs() < 1e-9);
        let total: f64 = (0..n).map(|i| f64::from(300 + i) / 1000.0).sum();
        assert!((j["total_s"].as_f64().unwrap() - total).abs() < 1e-6);
    }
}
