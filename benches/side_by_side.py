"""`attune analyze` against NeuroKit2 0.2.13 on the same CSV: the figures of docs/performance.md.

Usage (from the repository root; needs the pinned environment of fixtures/reference/requirements.txt
and a release build):
    cargo build --release
    /tmp/nkvenv/bin/python benches/side_by_side.py [--runs 7] [--mode warm|cold|both] [--ecg-csv F]

Two ways of measuring, both on 25 min of 1000 Hz ECG (NeuroKit2's simulator, fixed seed, written
with Python's shortest round-trip repr, 16-17 significant digits, as fixtures/signals/nk_ecg_*):

warm (the default; the measure of the performance issue "attune analyze >= 3x NeuroKit2"):
  NeuroKit2 in a Python process that has already imported everything: best of --runs of
  pandas read_csv + ecg_clean + ecg_peaks(correct_artifacts=False) + hrv_time +
  hrv_frequency(normalize=False), each stage timed too. attune: best of --runs wall clock of
  `attune analyze FILE --kind ecg --rate 1000` as a fresh process (process start included), and
  its per-stage split from ATTUNE_TIMINGS=1 (best of --runs per stage; see src/cli/analyze.rs).
  The floor is the best in-process time to read and parse the file alone (`read` + `parse` of a
  `--method streaming` run, where nothing else runs inside `parse`), plus the wall clock of a
  process that does nothing (`attune --version`), which every run pays.

cold (issue 3's older target, attune >= 10x; the README's table): each side as a separate process,
  interpreter start and imports included, median of --runs, on the inputs issue 3 used: 25 min of
  1000 Hz ECG (simulator method "simple", 10 significant digits) and 5 min of 1000 Hz EDA.

Prints one JSON object; `uptime` is included because the machine may be shared.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

NK_ECG = """
import sys, pandas as pd, neurokit2 as nk
x = pd.read_csv(sys.argv[1])["ecg"].to_numpy()
clean = nk.ecg_clean(x, sampling_rate=1000)
_, info = nk.ecg_peaks(clean, sampling_rate=1000, correct_artifacts=False)
p = info["ECG_R_Peaks"]
t = nk.hrv_time(p, sampling_rate=1000)
f = nk.hrv_frequency(p, sampling_rate=1000, normalize=False)
print(len(p), float(t["HRV_RMSSD"].iloc[0]), float(f["HRV_LF"].iloc[0]))
"""

NK_EDA = """
import sys, pandas as pd, neurokit2 as nk
x = pd.read_csv(sys.argv[1])["eda_us"].to_numpy()
signals, info = nk.eda_process(x, sampling_rate=1000)
print(int(signals["SCR_Peaks"].sum()), float(signals["EDA_Tonic"].mean()))
"""

ECG_ARGS = ["--kind", "ecg", "--rate", "1000", "--column", "ecg"]


def timed(cmd, runs, env=None):
    times, out, err = [], None, None
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        times.append(time.perf_counter() - t0)
        out, err = r.stdout.strip(), r.stderr.strip()
    return times, out, err


def write_ecg(path):
    import neurokit2 as nk
    import numpy as np

    ecg = nk.ecg_simulate(duration=25 * 60, sampling_rate=1000, heart_rate=70, random_state=1)
    with open(path, "w") as f:
        f.write("ecg\n" + "\n".join(repr(float(v)) for v in np.asarray(ecg)) + "\n")


def nk_warm(csv, runs):
    """Best-of-`runs` in-process NeuroKit2 time, total and per stage (s)."""
    import neurokit2 as nk
    import pandas as pd

    stages = ["read_csv", "clean", "peaks", "hrv_time", "hrv_frequency"]
    best = {k: float("inf") for k in stages + ["total"]}
    out = None
    for i in range(runs + 1):  # the first run warms caches and lazy imports; not counted
        t = [time.perf_counter()]
        x = pd.read_csv(csv)["ecg"].to_numpy()
        t.append(time.perf_counter())
        clean = nk.ecg_clean(x, sampling_rate=1000)
        t.append(time.perf_counter())
        _, info = nk.ecg_peaks(clean, sampling_rate=1000, correct_artifacts=False)
        p = info["ECG_R_Peaks"]
        t.append(time.perf_counter())
        ht = nk.hrv_time(p, sampling_rate=1000)
        t.append(time.perf_counter())
        hf = nk.hrv_frequency(p, sampling_rate=1000, normalize=False)
        t.append(time.perf_counter())
        if i == 0:
            out = {"beats": len(p), "rmssd_ms": float(ht["HRV_RMSSD"].iloc[0]),
                   "lf_ms2": float(hf["HRV_LF"].iloc[0])}
            continue
        for k, a, b in zip(stages, t, t[1:]):
            best[k] = min(best[k], b - a)
        best["total"] = min(best["total"], t[-1] - t[0])
    return best, out


def attune_warm(attune, csv, runs):
    wall, out, _ = timed([attune, "analyze", csv, *ECG_ARGS], runs)
    env = dict(os.environ, ATTUNE_TIMINGS="1")
    stages = {}
    for _ in range(runs):
        _, _, err = timed([attune, "analyze", csv, *ECG_ARGS], 1, env)
        if not err:  # a build from before ATTUNE_TIMINGS: wall clock only
            break
        for k, v in json.loads(err.splitlines()[-1]).items():
            stages[k] = min(stages.get(k, float("inf")), v)
    # The floor: read + parse alone. With --method streaming nothing else runs inside `parse`
    # (the NeuroKit2 ECG filter that starts there is not used).
    floor = float("inf")
    for _ in range(runs):
        _, _, err = timed([attune, "analyze", csv, *ECG_ARGS, "--method", "streaming"], 1, env)
        if not err:
            break
        t = json.loads(err.splitlines()[-1])
        floor = min(floor, t["read"] + t["parse"])
    nothing, _, _ = timed([attune, "--version"], runs)
    res = json.loads(out)
    return {
        "wall_s": min(wall),
        "wall_runs_s": [round(t, 4) for t in wall],
        "in_process_best_s": {k: round(v, 4) for k, v in stages.items()},
        "process_start_s": round(min(nothing), 4),
        "floor_read_parse_s": round(floor, 4) if stages else None,
        "floor_process_s": round(floor + min(nothing), 4) if stages else None,
        "out": {k: res[k] for k in ("beats", "rmssd_ms", "lf_ms2")},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--attune", default="target/release/attune")
    ap.add_argument("--mode", choices=["warm", "cold", "both"], default="warm")
    ap.add_argument("--ecg-csv", help="use this ECG CSV (column `ecg`, 1000 Hz) instead of simulating one")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="attune-bench-")
    ecg_csv = args.ecg_csv or os.path.join(tmp, "ecg_25min_1000hz.csv")
    if not args.ecg_csv and args.mode != "cold":
        write_ecg(ecg_csv)  # about a minute: the default simulator is ECGSYN
    results = {
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "nproc": os.cpu_count(),
    }
    if args.mode != "cold":
        results["ecg_csv_bytes"] = os.path.getsize(ecg_csv)
    if args.mode in ("warm", "both"):
        nk_best, nk_out = nk_warm(ecg_csv, args.runs)
        at = attune_warm(args.attune, ecg_csv, args.runs)
        results["warm_ecg_25min_1000hz"] = {
            "neurokit2_best_s": {k: round(v, 4) for k, v in nk_best.items()},
            "neurokit2_out": nk_out,
            "attune": at,
            "ratio": round(nk_best["total"] / at["wall_s"], 2),
        }
    if args.mode in ("cold", "both"):
        import neurokit2 as nk

        import numpy as np

        cold_ecg = os.path.join(tmp, "ecg_25min_1000hz_simple.csv")
        ecg = nk.ecg_simulate(duration=25 * 60, sampling_rate=1000, heart_rate=70, method="simple",
                              random_state=1)
        with open(cold_ecg, "w") as f:
            f.write("ecg\n" + "\n".join(format(v, ".10g") for v in np.asarray(ecg)) + "\n")
        eda_csv = os.path.join(tmp, "eda_5min_1000hz.csv")
        eda = nk.eda_simulate(duration=5 * 60, sampling_rate=1000, scr_number=15, noise=0.01,
                              drift=-0.001, random_state=2)
        with open(eda_csv, "w") as f:
            f.write("eda_us\n" + "\n".join(format(v, ".10g") for v in np.asarray(eda)) + "\n")
        py = sys.executable
        for name, csv, nk_code, attune_args in [
            ("cold_ecg_25min_1000hz", cold_ecg, NK_ECG, ECG_ARGS),
            ("cold_eda_5min_1000hz", eda_csv, NK_EDA, ["--kind", "eda", "--rate", "1000", "--column", "eda_us"]),
        ]:
            nk_all, nk_out, _ = timed([py, "-c", nk_code, csv], args.runs)
            at_all, at_out, _ = timed([args.attune, "analyze", csv, *attune_args], args.runs)
            nk_med, at_med = statistics.median(nk_all), statistics.median(at_all)
            results[name] = {
                "neurokit2_s": round(nk_med, 4),
                "attune_s": round(at_med, 4),
                "ratio": round(nk_med / at_med, 1),
                "neurokit2_runs_s": [round(t, 4) for t in nk_all],
                "attune_runs_s": [round(t, 4) for t in at_all],
                "neurokit2_out": nk_out,
                "attune_out": json.loads(at_out),
            }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
