//! `attune evaluate`: the policy and a crude reference rule scored on a simulated cohort or on
//! labelled recordings (`crate::evaluate` runs each person through the engine,
//! `crate::evaluate::metrics` defines every number).
//!
//! People run on worker threads ([`crate::evaluate::par_map`]); the report is in scenario
//! order, then person order, whatever the thread count. A progress bar goes to stderr when it
//! is a terminal. `--plots DIR` draws each person right after their run, on the worker; a
//! failed picture is one line on stderr and makes the exit code non-zero once the report is out.
//!
//! With `ATTUNE_TIMINGS=1` in the environment, one more JSON line goes to stderr: worker time
//! summed over people for each step (`simulate_s`, `engine_s`, `plot_s`, `score_s`), the
//! thread count and the wall time (`wall_s`). stdout is unchanged.
//!
//! # JSON (`--json`: one object on stdout)
//!
//! `{"cohort":N,"seed":S,"minutes":M|null,"scenarios":{"<name>":{<Summary keys>,
//! "reference_rule":{<Summary keys>},"people":[<person>...]}}}` where the Summary keys are those
//! of [`crate::evaluate::metrics::Summary`] (`n_people` is the count; `people` is the per-person
//! array, at the scenario level only) and a person is `{"participant","seed","onsets",
//! "onset_delay_s","missed_onsets","false_ease_off_rest_frac","escalate_rest_frac",
//! "escalations_during_stress","flips_per_min","recovery_delay_s","unrecovered",
//! "preempted_onsets","not_eased_at_end","initial_stress_blocks","initial_stress_eased_off",
//! "initial_stress_eased_off_60s","escalate_after_initial_stress",
//! "escalate_after_initial_stress_frac","responder":bool|null,
//! "reference_rule":{"onset_delay_s","missed_onsets","false_ease_off_rest_frac"},
//! "person":<the generator's person object>|null}`. The top level also has `"ectopic_pct":P|null`;
//! with `--ectopic-pct P` each scenario has `"ectopic":{<EctopicSummary keys>}` and each person
//! `"ectopic":{"flips_clean","flips_ectopic","action_diff_ticks","ticks","unmatched_ticks"}`
//! (`crate::evaluate::metrics::compare_ectopic`); without it neither is there. Every simulated
//! person then runs twice, clean and with about P % of their beats ectopic; the clean run is the
//! one scored everywhere else. With `--recording`, the top level is
//! `{"recordings":[FILE...],"minutes":null,"scenarios":{"recordings":{...}}}`: every
//! recording is one person of a single report keyed `recordings`, and each person also has
//! `"file"` (and `"seed": null`).

mod text;
#[cfg(test)]
use text::person_facts;
use text::print_human;

use super::Common;
use crate::engine::EngineConfig;
use crate::evaluate::metrics::{
    EctopicComparison, PersonMetrics, Summary, compare_ectopic, score_reference, score_run,
    summarize, summarize_ectopic,
};
use crate::evaluate::{PersonRun, member_id, par_map, plot, run_recording, simulate_member_with};
use crate::recording::{Header, Reader, Record};
use crate::simulate::cohort::{ALL_SCENARIOS, CohortScenario};
use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The largest cohort.
const MAX_COHORT: u64 = 10_000;
/// Session lengths `--minutes` accepts.
const MINUTES: std::ops::RangeInclusive<f64> = 5.0..=60.0;
/// Ectopic shares `--ectopic-pct` accepts, % of beats (0 excluded).
const ECTOPIC_PCT_MAX: f64 = 50.0;
/// The report key of `--recording` runs.
const RECORDINGS: &str = "recordings";

/// Arguments of `evaluate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Scenarios: rest, rest-then-stress, tsst, paced-breathing, movement, startle, stressed-start.\n\
\n\
Examples:\n  \
attune evaluate --cohort 50 --seed 1                      every scenario, default lengths\n  \
attune evaluate --cohort 20 --seed 7 --scenario tsst --scenario startle --minutes 30\n  \
attune evaluate --cohort 50 --seed 1 --json > eval.json   one JSON object\n  \
attune evaluate --cohort 5 --seed 1 --scenario rest-then-stress --plots /tmp/plots\n  \
attune evaluate --recording fixtures/sim-rest-stress.attune.ndjson\n  \
attune evaluate --cohort 50 --seed 4242 --ectopic-pct 10  also with 10 % ectopic beats\n\
\n\
Metrics (exact definitions in the evaluate::metrics module docs): onset delay median/p90 and\n\
missed onsets (stress blocks after a calm segment), false ease_off and escalate at rest,\n\
escalations during stress, flips per minute, recovery delay (first 30 s without ease_off after a\n\
stress block) and unrecovered blocks, ease_off during movement and startles. Decisions during\n\
warm-up and calibration are not scored. Responder figures count only people whose drawn HR rise\n\
is >= 3 bpm or whose skin responds (tonic rise >= 0.3 uS). stressed-start adds ease_off within 60 s\n\
of the initial stress and escalate after it. --ectopic-pct P reruns everyone with P % ectopic\n\
beats and compares the decisions. The reference rule eases off when HR is 7.5 bpm above its\n\
first two minutes."
)]
pub struct EvaluateArgs {
    /// Simulated people per scenario (1..=10000); person i is the same in every scenario.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cohort: Option<i64>,
    /// Cohort seed [default: 1]: person i has seed person_seed(S, i).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// A scenario to run (repeat for more) [default: all seven].
    #[arg(long, value_name = "NAME")]
    pub scenario: Vec<String>,
    /// Every session's length in minutes (5..=60; phases keep their proportions)
    /// [default: each scenario's own length].
    #[arg(long, value_name = "M", allow_hyphen_values = true)]
    pub minutes: Option<f64>,
    /// Labelled recordings to score instead of a simulated cohort (all in one report).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub recording: Vec<PathBuf>,
    /// Score a recording without segments as one segment with this label over its whole
    /// length (e.g. `rest` for a real recording known to be seated rest); recordings with
    /// segments keep theirs.
    #[arg(long, value_name = "LABEL", requires = "recording")]
    pub unlabelled_as: Option<String>,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write one PNG per person and scenario into DIR (created): `<scenario>-<participant>.png`.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Worker threads [default: the available cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Also run every simulated person with about P % of their beats ectopic (short–long
    /// pairs; 0 < P <= 50) and compare the decisions with the clean run (`ectopic` per
    /// scenario). Doubles the work.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub ectopic_pct: Option<f64>,
}

/// What to evaluate, validated.
#[derive(Debug)]
enum Plan {
    Cohort {
        n: u64,
        seed: u64,
        scenarios: Vec<CohortScenario>,
        minutes: Option<f64>,
        ectopic_pct: Option<f64>,
    },
    Recordings(Vec<(PathBuf, Header, Vec<Record>)>),
}

/// One unit of work.
enum Job<'a> {
    /// Scenario, cohort seed, person index, session length (s), ectopic share (0..1).
    Sim(CohortScenario, u64, u64, Option<f64>, Option<f64>),
    /// Path, header, records.
    Rec(&'a Path, &'a Header, &'a [Record]),
}

/// One person's result, without the run itself.
#[derive(Debug)]
struct PersonResult {
    group: String,
    participant: String,
    seed: Option<u64>,
    file: Option<String>,
    policy: PersonMetrics,
    reference: PersonMetrics,
    person: Option<Value>,
    plot_error: Option<String>,
    /// The run had no decision after calibration (no consent to process, or no usable data).
    undecided: bool,
    /// The clean run against the ectopic one (`--ectopic-pct`).
    ectopic: Option<EctopicComparison>,
}

/// Runs `evaluate`.
pub fn run(common: &Common, a: &EvaluateArgs) -> anyhow::Result<()> {
    let plan = plan(a)?;
    if let Some(dir) = &a.plots {
        if !plot::AVAILABLE {
            bail!(
                "--plots {}: this attune was built without plotting (cargo feature `plots`)",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--plots {}: cannot create the directory", dir.display()))?;
    }
    anyhow::ensure!(a.threads != Some(0), "--threads must be at least 1, not 0");
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let show_progress = std::io::stderr().is_terminal() && !common.quiet;
    let started = Instant::now();
    let (results, mut timings) = evaluate(&plan, threads, a.plots.as_deref(), show_progress);
    if std::env::var_os("ATTUNE_TIMINGS").is_some_and(|v| v == "1") {
        if let Some(m) = timings.as_object_mut() {
            m.insert("threads".into(), json!(threads));
            m.insert("wall_s".into(), json!(started.elapsed().as_secs_f64()));
        }
        let _ = writeln!(std::io::stderr(), "{timings}");
    }
    let report = report(&plan, &results);
    if a.json {
        say!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&plan, &report)?;
    }
    for r in results.iter().filter(|r| r.undecided) {
        let who = r.file.as_deref().unwrap_or(&r.participant);
        tracing::warn!(
            person = %who,
            group = %r.group,
            "No decision after calibration (no consent to process, or no usable data): the person's onsets count as missed and nothing else is scored."
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter_map(|r| r.plot_error.as_deref())
        .collect();
    if !failed.is_empty() {
        let mut err = std::io::stderr().lock();
        for f in &failed {
            let _ = writeln!(
                err,
                "attune: plot: {}",
                super::one_line(&anyhow::anyhow!("{f}"))
            );
        }
        bail!(
            "{} of {} plots could not be written",
            failed.len(),
            results.len()
        );
    }
    Ok(())
}

/// Checks the arguments and reads any recordings.
fn plan(a: &EvaluateArgs) -> anyhow::Result<Plan> {
    if !a.recording.is_empty() {
        for (given, flag) in [
            (a.cohort.is_some(), "--cohort"),
            (a.seed.is_some(), "--seed"),
            (!a.scenario.is_empty(), "--scenario"),
            (a.minutes.is_some(), "--minutes"),
            (a.ectopic_pct.is_some(), "--ectopic-pct"),
        ] {
            if given {
                bail!(
                    "{flag} cannot be used with --recording (a recording has its own person, segments and length)"
                );
            }
        }
        let recs = a
            .recording
            .iter()
            .map(|p| read_recording(p, a.unlabelled_as.as_deref()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Plan::Recordings(recs));
    }
    let Some(n) = a.cohort else {
        bail!("give --cohort N (simulated people per scenario) or --recording FILE...");
    };
    if !(1..=MAX_COHORT as i64).contains(&n) {
        bail!("--cohort must be between 1 and {MAX_COHORT}, not {n}");
    }
    if let Some(m) = a.minutes
        && !(m.is_finite() && MINUTES.contains(&m))
    {
        bail!(
            "--minutes must be between {} and {}, not {m}",
            MINUTES.start(),
            MINUTES.end()
        );
    }
    if let Some(p) = a.ectopic_pct
        && !(p.is_finite() && p > 0.0 && p <= ECTOPIC_PCT_MAX)
    {
        bail!("--ectopic-pct must be above 0 and at most {ECTOPIC_PCT_MAX}, not {p}");
    }
    let mut scenarios = Vec::new();
    for name in &a.scenario {
        let Some(s) = CohortScenario::from_name(name) else {
            let names: Vec<&str> = ALL_SCENARIOS.iter().map(|s| s.name()).collect();
            bail!("unknown scenario {name:?} (one of: {})", names.join(", "));
        };
        if !scenarios.contains(&s) {
            scenarios.push(s);
        }
    }
    if scenarios.is_empty() {
        scenarios = ALL_SCENARIOS.to_vec();
    }
    Ok(Plan::Cohort {
        n: n.unsigned_abs(),
        seed: a.seed.unwrap_or(1),
        scenarios,
        minutes: a.minutes,
        ectopic_pct: a.ectopic_pct,
    })
}

/// Reads a whole recording; it must have labelled segments, or get one `unlabelled_as` over
/// its whole length (first to last record).
fn read_recording(
    path: &Path,
    unlabelled_as: Option<&str>,
) -> anyhow::Result<(PathBuf, Header, Vec<Record>)> {
    let name = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("{name}"))?;
    let mut r =
        Reader::open(BufReader::with_capacity(1 << 16, file)).with_context(|| format!("{name}"))?;
    let mut records = Vec::new();
    while let Some(rec) = r.next_record().with_context(|| format!("{name}"))? {
        records.push(rec);
    }
    let mut header = r.header().clone();
    if let (true, Some(label)) = (header.segments.is_empty(), unlabelled_as) {
        let end = records.iter().map(Record::host_t).fold(0.0, f64::max);
        if end > 0.0 {
            header.segments.push(crate::recording::Segment {
                label: label.to_string(),
                start_s: 0.0,
                end_s: end,
            });
        }
    }
    if header.segments.is_empty() {
        bail!(
            "{name}: the recording has no labelled segments (header `segments`), so there is nothing to score (--unlabelled-as LABEL scores it as one segment)"
        );
    }
    Ok((path.to_owned(), header, records))
}

/// The report name of a recording: its file name up to the first dot.
fn recording_name(path: &Path) -> String {
    let f = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    match f.split_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => f,
    }
}

/// Runs every person (module doc) and scores them.
fn evaluate(
    plan: &Plan,
    threads: usize,
    plots: Option<&Path>,
    show_progress: bool,
) -> (Vec<PersonResult>, Value) {
    let jobs: Vec<Job> = match plan {
        Plan::Cohort {
            n,
            seed,
            scenarios,
            minutes,
            ectopic_pct,
        } => scenarios
            .iter()
            .flat_map(|&s| {
                (0..*n).map(move |i| {
                    Job::Sim(
                        s,
                        *seed,
                        i,
                        minutes.map(|m| m * 60.0),
                        ectopic_pct.map(|p| p / 100.0),
                    )
                })
            })
            .collect(),
        Plan::Recordings(recs) => recs.iter().map(|(p, h, r)| Job::Rec(p, h, r)).collect(),
    };
    // Plot file names, made unique (two recordings may share a name and a participant).
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let plot_names: Vec<String> = jobs
        .iter()
        .map(|job| {
            let base = match job {
                Job::Sim(s, _, i, _, _) => format!("{}-{}", s.name(), member_id(*i)),
                Job::Rec(p, h, _) => format!("{}-{}", recording_name(p), h.participant),
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("{base}.png")
            } else {
                format!("{base}-{n}.png")
            }
        })
        .collect();
    let jobs: Vec<(&Job, &String)> = jobs.iter().zip(&plot_names).collect();
    let progress = if show_progress {
        indicatif::ProgressBar::new(jobs.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let cfg = EngineConfig::default();
    let timings = Timings::default();
    let results = par_map(&jobs, threads, |&(job, plot_name)| {
        let t0 = Instant::now();
        let mut simulated = t0;
        let mut ectopic = None;
        let (run, group, file) = match job {
            Job::Sim(s, cohort_seed, i, duration, ectopic_frac) => {
                let (seed, sim) = simulate_member_with(*s, *cohort_seed, *i, *duration, None);
                simulated = Instant::now();
                let mut run = run_recording(&sim.header, sim.records, &cfg, s.name());
                run.seed = Some(seed);
                if let Some(frac) = ectopic_frac {
                    let (_, sim) =
                        simulate_member_with(*s, *cohort_seed, *i, *duration, Some(*frac));
                    let other = run_recording(&sim.header, sim.records, &cfg, s.name());
                    ectopic = Some(compare_ectopic(&run.decisions, &other.decisions));
                }
                (run, s.name().to_string(), None)
            }
            Job::Rec(p, h, r) => (
                run_recording(h, r.to_vec(), &cfg, &recording_name(p)),
                RECORDINGS.to_string(),
                Some(p.display().to_string()),
            ),
        };
        let engined = Instant::now();
        let plot_error = plots.and_then(|dir| {
            let path = dir.join(plot_name);
            plot::plot_person(&run, &path).err().map(|e| e.to_string())
        });
        let plotted = Instant::now();
        let mut r = person_result(&run, group, file, plot_error);
        r.ectopic = ectopic;
        timings.add([
            simulated - t0,
            engined - simulated,
            plotted - engined,
            plotted.elapsed(),
        ]);
        progress.inc(1);
        r
    });
    progress.finish_and_clear();
    (results, timings.seconds())
}

/// Worker time per step, summed over people (µs), for `ATTUNE_TIMINGS=1`.
#[derive(Debug, Default)]
struct Timings([AtomicU64; 4]);

impl Timings {
    const STEPS: [&str; 4] = ["simulate", "engine", "plot", "score"];

    fn add(&self, steps: [Duration; 4]) {
        for (a, d) in self.0.iter().zip(steps) {
            a.fetch_add(
                u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    }

    fn seconds(&self) -> Value {
        let mut m = Map::new();
        for (name, a) in Self::STEPS.iter().zip(&self.0) {
            m.insert(
                format!("{name}_s"),
                json!(a.load(Ordering::Relaxed) as f64 / 1e6),
            );
        }
        Value::Object(m)
    }
}

fn person_result(
    run: &PersonRun,
    group: String,
    file: Option<String>,
    plot_error: Option<String>,
) -> PersonResult {
    PersonResult {
        group,
        participant: run.participant.to_string(),
        seed: run.seed,
        file,
        policy: score_run(run),
        reference: score_reference(run),
        person: run
            .generator
            .as_ref()
            .and_then(|g| g.get("person"))
            .cloned(),
        plot_error,
        undecided: !run
            .decisions
            .iter()
            .any(crate::evaluate::metrics::post_calibration),
        ectopic: None,
    }
}

/// The report as one JSON value (module doc).
fn report(plan: &Plan, results: &[PersonResult]) -> Value {
    let groups: Vec<String> = match plan {
        Plan::Cohort { scenarios, .. } => scenarios.iter().map(|s| s.name().to_string()).collect(),
        Plan::Recordings(_) => vec![RECORDINGS.to_string()],
    };
    let mut scenarios = Map::new();
    for g in groups {
        let people: Vec<&PersonResult> = results.iter().filter(|r| r.group == g).collect();
        let mut obj = summary_map(&summarize(people.iter().map(|p| &p.policy)));
        obj.insert(
            "reference_rule".into(),
            Value::Object(summary_map(&summarize(people.iter().map(|p| &p.reference)))),
        );
        if let Plan::Cohort {
            ectopic_pct: Some(pct),
            ..
        } = plan
        {
            let e = summarize_ectopic(*pct, people.iter().filter_map(|p| p.ectopic.as_ref()));
            obj.insert(
                "ectopic".into(),
                serde_json::to_value(e).unwrap_or(Value::Null),
            );
        }
        obj.insert(
            "people".into(),
            Value::Array(people.iter().map(|p| person_json(p)).collect()),
        );
        scenarios.insert(g, Value::Object(obj));
    }
    match plan {
        Plan::Cohort {
            n,
            seed,
            minutes,
            ectopic_pct,
            ..
        } => json!({"cohort": n, "seed": seed, "minutes": minutes, "ectopic_pct": ectopic_pct,
            "scenarios": scenarios}),
        Plan::Recordings(recs) => json!({
            "recordings": recs.iter().map(|(p, ..)| p.display().to_string()).collect::<Vec<_>>(),
            "minutes": null,
            "scenarios": scenarios,
        }),
    }
}

fn summary_map(s: &Summary) -> Map<String, Value> {
    match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn person_json(p: &PersonResult) -> Value {
    let m = &p.policy;
    let mut v = json!({
        "participant": p.participant,
        "seed": p.seed,
        "onsets": m.onsets,
        "onset_delay_s": m.onset_delay_s(),
        "missed_onsets": m.missed_onsets,
        "false_ease_off_rest_frac": m.calm_ease_off.frac(),
        "escalate_rest_frac": m.calm_escalate.frac(),
        "escalations_during_stress": m.escalations_during_stress,
        "flips_per_min": m.flips_per_min(),
        "recovery_delay_s": m.recovery_delay_s(),
        "unrecovered": m.unrecovered,
        "preempted_onsets": m.preempted_onsets,
        "not_eased_at_end": m.not_eased_at_end,
        "initial_stress_blocks": m.initial_stress_blocks,
        "initial_stress_eased_off": m.initial_stress_eased_off,
        "initial_stress_eased_off_60s": m.initial_stress_eased_off_60s,
        "escalate_after_initial_stress": m.escalate_after_initial_stress.hits,
        "escalate_after_initial_stress_frac": m.escalate_after_initial_stress.frac(),
        "responder": m.responder,
        "reference_rule": {
            "onset_delay_s": p.reference.onset_delay_s(),
            "missed_onsets": p.reference.missed_onsets,
            "false_ease_off_rest_frac": p.reference.calm_ease_off.frac(),
        },
        "person": p.person,
    });
    if let (Some(f), Some(o)) = (&p.file, v.as_object_mut()) {
        o.insert("file".into(), Value::String(f.clone()));
    }
    if let (Some(e), Some(o)) = (&p.ectopic, v.as_object_mut()) {
        o.insert(
            "ectopic".into(),
            serde_json::to_value(e).unwrap_or(Value::Null),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cohort: i64, threads: usize) -> EvaluateArgs {
        EvaluateArgs {
            cohort: Some(cohort),
            seed: Some(3),
            scenario: vec!["rest-then-stress".into()],
            minutes: Some(5.0),
            recording: Vec::new(),
            unlabelled_as: None,
            json: true,
            plots: None,
            threads: Some(threads),
            ectopic_pct: None,
        }
    }

    fn report_for(a: &EvaluateArgs) -> String {
        let plan = plan(a).unwrap();
        let (results, _) = evaluate(&plan, a.threads.unwrap_or(1), None, false);
        serde_json::to_string(&report(&plan, &results)).unwrap()
    }

    #[test]
    fn the_report_is_the_same_twice_and_for_any_thread_count() {
        let one = report_for(&args(3, 1));
        assert_eq!(one, report_for(&args(3, 1)));
        assert_eq!(one, report_for(&args(3, 3)));
        let v: Value = serde_json::from_str(&one).unwrap();
        let people = v["scenarios"]["rest-then-stress"]["people"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = people
            .iter()
            .map(|p| p["participant"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sim-001", "sim-002", "sim-003"]);
    }

    #[test]
    fn bad_arguments_are_refused_before_any_work() {
        let mut a = args(0, 1);
        assert!(plan(&a).unwrap_err().to_string().contains("--cohort"));
        a.cohort = Some(10_001);
        assert!(plan(&a).is_err());
        a.cohort = Some(2);
        a.minutes = Some(f64::NAN);
        assert!(plan(&a).unwrap_err().to_string().contains("--minutes"));
        a.minutes = Some(4.0);
        assert!(plan(&a).is_err());
        a.minutes = None;
        for bad in [0.0, -1.0, 50.5, f64::INFINITY] {
            a.ectopic_pct = Some(bad);
            let e = plan(&a).unwrap_err().to_string();
            assert!(e.contains("--ectopic-pct"), "{e}");
        }
        a.ectopic_pct = None;
        a.scenario = vec!["nap".into()];
        let e = plan(&a).unwrap_err().to_string();
        assert!(e.contains("nap") && e.contains("paced-breathing"), "{e}");
        a.scenario.clear();
        a.recording = vec!["x.attune.ndjson".into()];
        assert!(
            plan(&a)
                .unwrap_err()
                .to_string()
                .contains("--cohort cannot")
        );
    }

    #[test]
    fn person_facts_flatten_the_generator_person() {
        let v = json!({"heart": {"hr_rest_bpm": 61.472, "kind": "x"}, "z": 2});
        assert_eq!(
            person_facts(Some(&v)),
            "heart.hr_rest_bpm=61.47 heart.kind=\"x\" z=2"
        );
        assert_eq!(person_facts(None), "");
        assert_eq!(
            recording_name(Path::new("/a/sim-rest-stress.attune.ndjson")),
            "sim-rest-stress"
        );
    }

    #[test]
    fn ectopic_runs_add_an_ectopic_object_per_scenario_and_person_and_only_then() {
        let v: Value = serde_json::from_str(&report_for(&args(1, 1))).unwrap();
        let sc = &v["scenarios"]["rest-then-stress"];
        assert!(sc.get("ectopic").is_none() && sc["people"][0].get("ectopic").is_none());
        assert_eq!(v["ectopic_pct"], Value::Null);
        assert!(sc["people"][0]["responder"].is_boolean());
        assert!(sc.get("responder_detected_frac").is_some());
        let mut a = args(1, 1);
        a.ectopic_pct = Some(10.0);
        let v: Value = serde_json::from_str(&report_for(&a)).unwrap();
        let sc = &v["scenarios"]["rest-then-stress"];
        let e = &sc["ectopic"];
        let p = &sc["people"][0]["ectopic"];
        assert_eq!(e["ectopic_pct"], json!(10.0));
        assert_eq!(e["n_people"], json!(1));
        // 5 min at 4 decisions a second, matched tick for tick.
        let ticks = p["ticks"].as_u64().unwrap();
        assert!(ticks > 1000, "{p}");
        assert_eq!(e["ticks"], p["ticks"]);
        assert_eq!(e["action_diff_ticks"], p["action_diff_ticks"]);
        let extra = p["flips_ectopic"]
            .as_u64()
            .unwrap()
            .saturating_sub(p["flips_clean"].as_u64().unwrap());
        assert_eq!(e["ectopic_extra_flips"], json!(extra));
        // The clean figures are those of the run without the flag.
        assert_eq!(
            sc["flips_per_min"],
            serde_json::from_str::<Value>(&report_for(&args(1, 1))).unwrap()["scenarios"]["rest-then-stress"]
                ["flips_per_min"]
        );
    }
}
