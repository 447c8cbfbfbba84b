//! The human-readable report of `evaluate`: per-scenario tables and per-person lines.

use super::*;

/// The human report: a header line, then per scenario the summary table and the people.
pub(super) fn print_human(plan: &Plan, report: &Value) -> anyhow::Result<()> {
    match plan {
        Plan::Cohort {
            n, seed, minutes, ..
        } => {
            let len = match minutes {
                Some(m) => format!("{} min sessions", fmt_num(*m)),
                None => "each scenario's default length".to_string(),
            };
            say!(
                "attune evaluate: cohort {n}, seed {seed}, {len}; the engine and policy are the same code as `attune replay --speed max`"
            );
        }
        Plan::Recordings(recs) => say!(
            "attune evaluate: {} recording(s) in one report; the engine and policy are the same code as `attune replay --speed max`",
            recs.len()
        ),
    }
    let Some(scenarios) = report.get("scenarios").and_then(Value::as_object) else {
        return Ok(());
    };
    const ROWS: [(&str, &str); 27] = [
        ("n_people", "people"),
        ("onsets", "onsets"),
        ("onset_delay_median_s", "onset delay median (s)"),
        ("onset_delay_p90_s", "onset delay p90 (s)"),
        ("missed_onsets", "missed onsets"),
        ("false_ease_off_rest_frac", "false ease_off at rest"),
        ("escalate_rest_frac", "escalate at rest"),
        ("escalations_during_stress", "escalations during stress"),
        ("flips_per_min", "flips per min"),
        ("recovery_delay_median_s", "recovery delay median (s)"),
        ("unrecovered", "unrecovered blocks"),
        ("ease_off_movement_frac", "ease_off in movement"),
        ("ease_off_startle_frac", "ease_off in startles"),
        ("preempted_onsets", "onsets already eased off"),
        ("not_eased_at_end", "blocks not eased off at end"),
        ("initial_stress_blocks", "stress in calibration"),
        ("initial_stress_eased_off", "... eased off"),
        ("initial_stress_eased_off_60s", "... eased off within 60 s"),
        ("initial_stress_eased_off_60s_frac", "... share within 60 s"),
        ("escalate_after_initial_stress_frac", "escalate after it"),
        ("responders", "responders"),
        ("responder_onsets", "responder onsets"),
        ("responder_missed_onsets", "responder missed onsets"),
        ("responder_preempted_onsets", "responder onsets eased off"),
        ("responder_detected_frac", "responder onsets detected"),
        (
            "responder_onset_delay_median_s",
            "responder delay median (s)",
        ),
        ("responder_onset_delay_p90_s", "responder delay p90 (s)"),
    ];
    const ECTOPIC_ROWS: [(&str, &str); 7] = [
        ("ectopic_pct", "ectopic beats (%)"),
        ("flips_clean", "flips, clean"),
        ("flips_ectopic", "flips, ectopic"),
        ("ectopic_extra_flips", "extra flips (sum over people)"),
        ("action_diff_ticks", "ticks with another action"),
        ("action_diff_frac", "... share of ticks"),
        ("unmatched_ticks", "ticks without a partner"),
    ];
    for (name, s) in scenarios {
        say!("");
        say!("== {name} ==");
        say!("{:<28} {:>10} {:>10}", "metric", "policy", "reference");
        let reference = s.get("reference_rule");
        for (key, label) in ROWS {
            let p = match s.get(key) {
                Some(Value::Array(people)) => people.len().to_string(),
                v => fmt_value(v),
            };
            let r = fmt_value(reference.and_then(|r| r.get(key)));
            say!("{label:<28} {p:>10} {r:>10}");
        }
        if let Some(e) = s.get("ectopic") {
            say!("");
            say!("{:<30} {:>10}", "ectopic robustness", "policy");
            for (key, label) in ECTOPIC_ROWS {
                say!("{label:<30} {:>10}", fmt_value(e.get(key)));
            }
        }
        say!("");
        say!(
            "{:<10} {:>20} {:>14} {:>7} {:>7} {:>6} {:>9} | {:>14} {:>7} | person",
            "who",
            "seed",
            "onset",
            "f.eo",
            "esc",
            "flips",
            "recovery",
            "ref onset",
            "ref f.eo"
        );
        for p in s
            .get("people")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let g = |k: &str| p.get(k);
            let r = |k: &str| p.get("reference_rule").and_then(|r| r.get(k));
            let onset = |delay: Option<&Value>, missed: Option<&Value>| {
                fmt_onset(delay, missed, g("onsets"))
            };
            let recovery = match (
                g("recovery_delay_s").and_then(Value::as_f64),
                g("unrecovered").and_then(Value::as_u64),
            ) {
                (_, Some(u)) if u > 0 => "never".to_string(),
                (Some(d), _) => format!("{d:.1}"),
                _ => "-".to_string(),
            };
            say!(
                "{:<10} {:>20} {:>14} {:>7} {:>7} {:>6} {:>9} | {:>14} {:>7} | {}",
                fmt_text(g("participant")),
                fmt_value(g("seed")),
                onset(g("onset_delay_s"), g("missed_onsets")),
                fmt_value(g("false_ease_off_rest_frac")),
                fmt_value(g("escalate_rest_frac")),
                fmt_value(g("flips_per_min")),
                recovery,
                onset(r("onset_delay_s"), r("missed_onsets")),
                fmt_value(r("false_ease_off_rest_frac")),
                person_facts(g("person")),
            );
        }
    }
    Ok(())
}

/// A person's onset cell: `12.5`, `missed`, `12.5 +1 missed`, or `-` without onsets.
pub(super) fn fmt_onset(
    delay: Option<&Value>,
    missed: Option<&Value>,
    onsets: Option<&Value>,
) -> String {
    let onsets = onsets.and_then(Value::as_u64).unwrap_or(0);
    let missed = missed.and_then(Value::as_u64).unwrap_or(0);
    match delay.and_then(Value::as_f64) {
        _ if onsets == 0 => "-".to_string(),
        None => "missed".to_string(),
        Some(d) if missed == 0 => format!("{d:.1}"),
        Some(d) => format!("{d:.1} +{missed} missed"),
    }
}

pub(super) fn fmt_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        other => fmt_value(other),
    }
}

/// A cell: `-` for null, integers as they are, other numbers with 3 decimals.
pub(super) fn fmt_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::Number(n)) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |x| format!("{x:.3}")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A number without trailing zeros (at most 2 decimals).
pub(super) fn fmt_num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The generator's person object as `path=value` pairs (nested keys joined with `.`).
pub(super) fn person_facts(v: Option<&Value>) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            Value::Number(n) => out.push(format!(
                "{prefix}={}",
                n.as_f64().map_or_else(|| n.to_string(), fmt_num)
            )),
            Value::Null => {}
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut out = Vec::new();
    if let Some(v) = v {
        walk("", v, &mut out);
    }
    out.join(" ")
}
