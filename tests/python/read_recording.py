import json, sys

with open(sys.argv[1]) as f:
    header = json.loads(next(f))
    data = {s["id"]: ([], []) for s in header["streams"]}      # id -> (times, values)
    rates = {s["id"]: s.get("rate_hz") for s in header["streams"]}
    for line in f:
        r = json.loads(line)
        if r["type"] == "chunk":
            n, t = len(r["samples"]), r.get("times")
            data[r["stream"]][0].extend(t or [r["t0"] + i / rates[r["stream"]] for i in range(n)])
            data[r["stream"]][1].extend(r["samples"])

# Everything above is the ten-line reader of docs/recording-format.md, verbatim. Below: print one
# JSON line summarising what it read, for the test suite to compare with the Rust reader.
# Usage: python3 tests/python/read_recording.py FILE.attune.ndjson
import math

with open(sys.argv[1]) as f:
    next(f)                                                    # the header
    kinds = [json.loads(line)["type"] for line in f if line.strip()]
records = sum(1 for k in kinds if k != "end")                  # data records
if kinds[-1:] != ["end"]:
    sys.exit("the file ends without its end record (truncated)")
print(json.dumps({
    "participant": header["participant"],
    "streams": {sid: {"n": len(vals), "sum": math.fsum(vals),
                      "first_t": times[0] if times else None,
                      "last_t": times[-1] if times else None}
                for sid, (times, vals) in data.items()},
    "records": records,
}, separators=(",", ":")))
