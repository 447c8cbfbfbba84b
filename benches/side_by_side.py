"""Whole-process timing: `attune analyze` against NeuroKit2 0.2.13 on the same CSV.

Issue 3's speed target: attune at least 10x faster than NeuroKit2 on 25 min of 1000 Hz ECG and on
5 min of 1000 Hz EDA, CSV in, whole process (interpreter start, imports, CSV parsing, features).

Usage (from the repository root; needs the pinned environment of fixtures/reference/requirements.txt
and a release build):
    cargo build --release
    /tmp/nkvenv/bin/python benches/side_by_side.py [--runs 5]

It writes the two inputs to a temporary directory (NeuroKit2 simulators, fixed seeds), then runs
each side `--runs` times as a separate process and reports the median wall time and the ratio.
Both sides compute the same features: ECG = clean + R-peaks + hrv_time + hrv_frequency(ms²);
EDA = eda_process (clean, tonic/phasic split, SCR peaks) + SCL/SCR summary.
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


def timed(cmd, runs):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        out = r.stdout.strip()
    return statistics.median(times), times, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--attune", default="target/release/attune")
    args = ap.parse_args()
    import neurokit2 as nk
    import numpy as np

    tmp = tempfile.mkdtemp(prefix="attune-bench-")
    ecg_csv = os.path.join(tmp, "ecg_25min_1000hz.csv")
    eda_csv = os.path.join(tmp, "eda_5min_1000hz.csv")
    ecg = nk.ecg_simulate(duration=25 * 60, sampling_rate=1000, heart_rate=70, method="simple", random_state=1)
    eda = nk.eda_simulate(duration=5 * 60, sampling_rate=1000, scr_number=15, noise=0.01, drift=-0.001, random_state=2)
    with open(ecg_csv, "w") as f:
        f.write("ecg\n" + "\n".join(format(v, ".10g") for v in np.asarray(ecg)) + "\n")
    with open(eda_csv, "w") as f:
        f.write("eda_us\n" + "\n".join(format(v, ".10g") for v in np.asarray(eda)) + "\n")

    py = sys.executable
    results = {}
    for name, csv, nk_code, attune_args in [
        ("ecg_25min_1000hz", ecg_csv, NK_ECG, ["--kind", "ecg", "--rate", "1000", "--column", "ecg"]),
        ("eda_5min_1000hz", eda_csv, NK_EDA, ["--kind", "eda", "--rate", "1000", "--column", "eda_us"]),
    ]:
        nk_med, nk_all, nk_out = timed([py, "-c", nk_code, csv], args.runs)
        at_med, at_all, at_out = timed([args.attune, "analyze", csv, *attune_args], args.runs)
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
