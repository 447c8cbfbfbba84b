#!/usr/bin/env python3
"""Writes vectors.json: attune's text-line golden vectors (DEVICES.md section 6 and DERIVED edge cases).

The expected values are computed here, independently of the Rust decoder, from the Seeed
Grove-GSR formula R = ((full_scale + 2x) * 10000) / (cal - x) ohm, G = 1e6 / R uS, and from the
line rules of SPEC.md. Run it from this directory: python3 gen_vectors.py > vectors.json
"""
import json

SEEED = "Seeed Grove-GSR wiki formula (VENDOR), as DEVICES.md section 6 gives it"
RULES = "attune's line rules, SPEC.md"


def ohm(x, cal=512.0, fs=1024.0):
    return (fs + 2 * x) * 10000.0 / (cal - x)


def adc(x, cal=512.0, fs=1024.0, index=None, t=None, no_time=False):
    f = {"raw": x}
    if no_time:
        f["t"] = None
    if 0 <= x < cal:
        r = ohm(x, cal, fs)
        f["ohm"] = r
        f["us"] = 1e6 / r
    else:
        f["invalid"] = "out_of_range"
    if index is not None:
        f["index"] = index
    if t is not None:
        f["t"] = t
    return {"frame": f}


def frame(raw, us=None, index=None, t=None, invalid=None):
    f = {"raw": raw}
    if us is not None:
        f["us"] = us
    if invalid is not None:
        f["invalid"] = invalid
    if index is not None:
        f["index"] = index
    if t is not None:
        f["t"] = t
    return {"frame": f}


def gap(frames, reason, ambiguous=False):
    return {"gap": {"frames": frames, "ambiguous": ambiguous, "reason": reason}}


def cs(body):
    x = 0
    for b in body.encode("ascii"):
        x ^= b
    return "%s*%02X" % (body, x)


V = []


def vec(id, data, expect, settings=None, start="settled", tick=None, prov=("DERIVED",), source=RULES):
    params = {"start": start}
    if settings:
        params["settings"] = settings
    if tick is not None:
        params["tick"] = tick
    v = {"id": id}
    if isinstance(data, list):
        v["chunks"] = data
    elif isinstance(data, bytes):
        v["hex"] = data.hex()
    else:
        v["text"] = data
    v["params"] = params
    v["expect"] = expect
    v["provenance"] = list(prov)
    v["source"] = source
    V.append(v)


TIME = {"time_column": 0, "value_column": 1}

# --- DEVICES.md section 6, DERIVED from the Seeed formula -----------------------------------
vec("d6-300-crlf", "300\r\n", {"decoded": [adc(300, index=0, no_time=True)], "stats": {"frames": 1}},
    source=SEEED + ": x = 300 -> 76 603.77 ohm -> 13.0542 uS")
vec("d6-0", "0\n", {"decoded": [adc(0)]}, source=SEEED + ": 20 000 ohm -> 50.0000 uS")
vec("d6-450", "450\n", {"decoded": [adc(450)]}, source=SEEED + ": 310 322.58 ohm -> 3.2225 uS")
vec("d6-300-cal480", "300\n", {"decoded": [adc(300, cal=480.0)]}, settings={"cal": 480.0},
    source=SEEED + ": cal 480 -> 90 222.22 ohm -> 11.0837 uS")
vec("d6-512-invalid", "512\n", {"decoded": [adc(512)]}, source=SEEED + ": x >= cal is invalid, kept raw")
vec("d6-600-invalid", "600\n", {"decoded": [adc(600)]}, source=SEEED + ": x >= cal is invalid, kept raw")
vec("d6-time-column", "12345,300\n", {"decoded": [adc(300, index=0, t=12.345)]}, settings=TIME,
    source=SEEED + "; DEVICES.md section 6: time col 0, value col 1 -> t = 12 345 ms, x = 300")
vec("d6-prefix", "GSR: 300\n", {"decoded": [adc(300)]}, settings={"prefix": "GSR:"},
    source="DEVICES.md section 6: prefix GSR: -> x = 300")
vec("d6-booting", "Booting\u2026\r\n".encode("utf-8"),
    {"decoded": [gap(1, "bad_line")], "stats": {"bad_lines": 1, "frames": 0}},
    source="DEVICES.md section 6: non-ASCII junk is skipped and counted (a lost sample once streaming)")
vec("d6-ff00", b"\xff\x00\r\n", {"decoded": [gap(1, "bad_line")], "stats": {"bad_lines": 1}},
    source="DEVICES.md section 6: binary junk is skipped and counted")
vec("d6-junk-at-open", "Booting\u2026\r\n".encode("utf-8") + b"\xff\x00\r\n300\r\n301\r\n302\r\n",
    {"decoded": [adc(300, index=0), adc(301, index=1), adc(302, index=2)],
     "stats": {"bad_lines": 1, "frames": 3, "frames_lost": 0}, "phase": "streaming"},
    start="open", source="DEVICES.md section 6 junk rule: first line dropped, junk counted, 3 valid lines settle")

# --- line ends and lengths ----------------------------------------------------------------
vec("lf-only", "300\n", {"decoded": [adc(300)]})
vec("cr-inside-is-bad", "300\r400\n", {"decoded": [gap(1, "bad_line")], "stats": {"bad_lines": 1}})
vec("partial-line-waits", "300\r\n301", {"decoded": [adc(300)], "stats": {"frames": 1}})
vec("len-256-kept", "300" + " " * 252 + "\r\n", {"decoded": [adc(300)]},
    source=RULES + ": 256 bytes before the newline, trailing CR included, is the limit")
vec("len-257-dropped", "300" + " " * 253 + "\r\n" + "301\n",
    {"decoded": [gap(1, "bad_line"), adc(301, index=1)], "stats": {"bad_lines": 1, "bytes_skipped": 258}})
vec("very-long-line", "7" * 1000 + "\n301\n", {"decoded": [gap(1, "bad_line"), adc(301, index=1)],
                                               "stats": {"bad_lines": 1, "bytes_skipped": 1001}})

# --- separators and fields ----------------------------------------------------------------
for name, line in [("comma", "12345,300"), ("semicolon", "12345;300"), ("tab", "12345\t300"),
                   ("spaces", "12345   300"), ("comma-spaced", "12345 , 300"), ("leading-space", "  12345,300  ")]:
    vec("sep-" + name, line + "\r\n", {"decoded": [adc(300, t=12.345)]}, settings=TIME)
vec("empty-field-is-a-field", "12345,,300\n", {"decoded": [adc(300)]}, settings={"value_column": 2})
vec("empty-value-field", "12345,,300\n", {"decoded": [gap(1, "bad_line")]}, settings={"value_column": 1})
vec("missing-column", "300\n", {"decoded": [gap(1, "bad_line")]}, settings={"value_column": 1})
vec("extra-columns", "300,1,2,3\n", {"decoded": [adc(300)]})
vec("float-adc", "300.5\n", {"decoded": [adc(300.5)]})
vec("exponent", "3e2\n", {"decoded": [adc(300.0)]})
vec("negative-adc-invalid", "-1\n", {"decoded": [adc(-1)]})
vec("nan-inf-ovf-bad", "nan\ninf\novf\n1e999\n",
    {"decoded": [gap(1, "bad_line")] * 4, "stats": {"bad_lines": 4}},
    source=RULES + "; Arduino Print::printFloat prints nan, inf, ovf (VENDOR)")
vec("hex-is-bad", "0x12C\n", {"decoded": [gap(1, "bad_line")]})
vec("bad-time-field", "1000,300\n12a45,301\n4294967296,302\n1150,303\n",
    {"decoded": [adc(300, index=0), gap(2, "bad_line"), adc(303, index=3, t=1.15)], "stats": {"bad_lines": 2}},
    settings=TIME, source=RULES + ": with a time column the loss shows at the next valid line")
vec("fullscale-4096", "1200\n", {"decoded": [adc(1200, cal=2048.0, fs=4096.0)]},
    settings={"cal": 2048.0, "full_scale": 4096.0},
    source=SEEED + " scaled to 12 bits as the Seeed forum reply does (3P): same R as x = 300 of 1024",
    prov=("DERIVED", "3P"))

# --- prefix, comments, blank lines ---------------------------------------------------------
vec("prefix-no-space", "GSR:300\n", {"decoded": [adc(300)]}, settings={"prefix": "GSR:"})
vec("prefix-foreign-ignored", "HR: 72\nGSR: 300\nACC 1 2 3\nGSR: 301\n",
    {"decoded": [adc(300, index=0), adc(301, index=1)], "stats": {"bad_lines": 0}}, settings={"prefix": "GSR:"})
vec("prefix-empty-value", "GSR:\n", {"decoded": [gap(1, "bad_line")]}, settings={"prefix": "GSR:"})
vec("comment-names-device", "# attune_gsr v1 20 Hz\r\n300\r\n# note\r\n301\r\n",
    {"decoded": [adc(300, index=0), adc(301, index=1)], "device": "attune_gsr v1 20 Hz",
     "notes_contain": ["device: attune_gsr v1 20 Hz", "device comment: note"]})
vec("blank-lines-ignored", "\r\n\n \t\r\n300\n", {"decoded": [adc(300, index=0)], "stats": {"bad_lines": 0}})

# --- checksums (attune's extension) ---------------------------------------------------------
vec("cs-valid", cs("300") + "\r\n", {"decoded": [adc(300)], "notes_contain": ["checksums seen"]},
    source="attune's *HH extension: XOR of the bytes before '*' (0x33^0x30^0x30 = 0x33)")
vec("cs-lowercase-hex", cs("120,300").lower() + "\r\n", {"decoded": [adc(300, t=0.12)]}, settings=TIME,
    source="attune's *HH extension: hex digits in either case; " + cs("120,300"))
vec("cs-wrong", "300*34\r\n", {"decoded": [gap(1, "crc")], "stats": {"crc_errors": 1, "bad_lines": 0}})
vec("cs-auto-then-missing", cs("300") + "\r\n301\r\n" + cs("302") + "\r\n",
    {"decoded": [adc(300, index=0), gap(1, "crc"), adc(302, index=2)], "stats": {"crc_errors": 1}})
vec("cs-auto-plain-lines", "300\r\n301\r\n", {"decoded": [adc(300), adc(301)], "stats": {"crc_errors": 0}})
vec("cs-required-missing", "300\r\n" + cs("301") + "\r\n",
    {"decoded": [gap(1, "crc"), adc(301, index=1)], "stats": {"crc_errors": 1}},
    settings={"checksum": "required"})
vec("cs-off-strips", "300*00\r\n301\r\n", {"decoded": [adc(300), adc(301)]}, settings={"checksum": "off"})
vec("cs-off-star-alone-bad", "300*\r\n", {"decoded": [gap(1, "bad_line")]}, settings={"checksum": "off"})
vec("cs-before-ascii", "3\xb00*33\r\n".encode("latin-1"), {"decoded": [gap(1, "crc")], "stats": {"crc_errors": 1}},
    source=RULES + ": the checksum is checked first, so a flipped high bit is a checksum failure")
vec("cs-reference-line", cs("12345,300") + "\r\n", {"decoded": [adc(300, t=12.345)]}, settings=TIME,
    source="reference sketch line millis,raw*HH")

# --- time column ---------------------------------------------------------------------------
vec("time-jump", "1000,300\n1050,301\n1200,302\n",
    {"decoded": [adc(300, index=0, t=1.0), adc(301, index=1, t=1.05), gap(2, "sequence_jump"),
                 adc(302, index=4, t=1.2)], "stats": {"frames_lost": 2}}, settings=TIME,
    source=RULES + ": 150 ms at 20 Hz is 3 periods, 2 lines lost")
vec("time-jitter", "1000,300\n1074,301\n1100,302\n",
    {"decoded": [adc(300, index=0), adc(301, index=1, t=1.074), adc(302, index=2)]}, settings=TIME,
    source=RULES + ": 74 ms = 1.48 periods is jitter, not a loss")
vec("time-wrap", "4294967270,300\n24,301\n",
    {"decoded": [adc(300, index=0, t=4294967.27), adc(301, index=1, t=4294967.32)]}, settings=TIME,
    source="Arduino millis() wraps at 2^32 ms (VENDOR); 50 ms across the wrap")
vec("time-reset", "5000,300\n5050,301\n100,302\n150,303\n",
    {"decoded": [adc(300, index=0, t=5.0), adc(301, index=1, t=5.05), gap(0, "resync", True),
                 adc(302, index=2, t=5.1), adc(303, index=3, t=5.15)],
     "notes_contain": ["board reset"]}, settings=TIME,
    source=RULES + ": time going back is a reset; with no host time elapsed k = 1")
vec("time-reset-host-time", [{"at": 0.0, "text": "5000,300\n"}, {"at": 3.0, "text": "100,301\n"}],
    {"decoded": [adc(300, index=0, t=5.0), gap(59, "resync", True), adc(301, index=60, t=8.0)]},
    settings=TIME, source=RULES + ": 3 host seconds at 20 Hz: k = 60, 59 frames lost (an estimate)")
vec("time-bad-between", "1000,300\n1050,xx\n1100,302\n",
    {"decoded": [adc(300, index=0), gap(1, "bad_line"), adc(302, index=2, t=1.1)], "stats": {"bad_lines": 1}},
    settings=TIME)
vec("time-crc-between", cs("1000,300") + "\n" + "1050,301*00\n" + cs("1100,302") + "\n",
    {"decoded": [adc(300, index=0), gap(1, "crc"), adc(302, index=2)], "stats": {"crc_errors": 1}},
    settings=TIME)
vec("time-bad-line-costs-no-period", "1000,300\nhello\n1050,301\n",
    {"decoded": [adc(300, index=0), adc(301, index=1)], "stats": {"bad_lines": 1, "frames_lost": 0}},
    settings=TIME, source=RULES + ": a bad line that takes no period was not a sample")
vec("no-time-bad-line-is-a-sample", "300\nxx\n301\n",
    {"decoded": [adc(300, index=0), gap(1, "bad_line"), adc(301, index=2)], "stats": {"frames_lost": 1}})

# --- value kinds ---------------------------------------------------------------------------
vec("ohm-kind", "76603.77\n", {"decoded": [frame(76603.77, us=1e6 / 76603.77)]}, settings={"value": "ohm"})
vec("ohm-zero-invalid", "0\n-5\n", {"decoded": [frame(0, invalid="out_of_range"), frame(-5, invalid="out_of_range")]},
    settings={"value": "ohm"})
vec("us-kind", "13.0542\n0\n", {"decoded": [frame(13.0542, us=13.0542), frame(0, us=0.0)]}, settings={"value": "us"})
vec("us-negative-invalid", "-0.5\n", {"decoded": [frame(-0.5, invalid="out_of_range")]}, settings={"value": "us"})

# --- the junk-at-start rule and the wrong device --------------------------------------------
vec("open-first-line-dropped", "00\n300\n301\n302\n",
    {"decoded": [adc(300, index=0), adc(301, index=1), adc(302, index=2)], "phase": "streaming",
     "stats": {"bytes_skipped": 3, "bad_lines": 0}}, start="open",
    source="DEVICES.md section 6: the first (possibly partial) line is dropped")
vec("open-run-broken", "junk\n300\n301\nbad\n302\n303\n304\n",
    {"decoded": [adc(302, index=0), adc(303, index=1), adc(304, index=2)], "stats": {"bad_lines": 1}},
    start="open", source="DEVICES.md section 6: discard until 3 consecutive lines parse")
vec("open-two-lines-early", "junk\n300\n301\n", {"decoded": [], "phase": "starting"}, start="open")
vec("open-late-two", [{"at": 0.0, "text": "junk\n300\n"}, {"at": 2.5, "text": "301\n"}],
    {"decoded": [adc(300, index=0), adc(301, index=1)], "phase": "streaming"}, start="open",
    source="DEVICES.md section 6 'or 2 s after open', attune's reading: two consecutive valid lines after settle_s")
vec("open-late-one-is-not-enough", [{"at": 0.0, "text": "junk\n"}, {"at": 2.5, "text": "300\nxx\n301\n"}],
    {"decoded": [], "phase": "starting"}, start="open")
vec("open-comments-neutral", "junk\n300\n# hello\n301\n\n302\n",
    {"decoded": [adc(300), adc(301), adc(302)], "phase": "streaming"}, start="open")
vec("open-failed-noise", [{"at": 0.0, "hex": "07ff00313233ff0a2a0a"}], {
    "decoded": [], "phase": "failed", "failed_contains": "no text lines parsed in 10 s"}, start="open", tick=10.0)
vec("open-failed-no-run", "junk\n300\nxx\n301\nxx\n", {
    "decoded": [], "phase": "failed", "failed_contains": "no 3 consecutive valid text lines in 10 s"},
    start="open", tick=10.0)
vec("open-not-failed-before-deadline", "junk\n", {"decoded": [], "phase": "starting"}, start="open", tick=9.9)
vec("open-bitalino-bytes", bytes.fromhex("00080e" "fc8f57" "bcb20418" "00080e" "0a0a" "fc8f57" * 4), {
    "decoded": [], "phase": "failed", "failed_contains": "no text lines parsed"}, start="open", tick=10.0,
    source="BITalino frames from DEVICES.md section 4 (DERIVED there) sent to a text-line host")
vec("open-checksummed-banner", cs("# attune_gsr v1 20 Hz") + "\r\n" + "".join(cs("%d,%d" % (120 + 50 * i, 300 + i)) + "\r\n" for i in range(3)),
    {"decoded": [adc(300, index=0, t=0.12), adc(301, index=1, t=0.17), adc(302, index=2, t=0.22)],
     "device": "attune_gsr v1 20 Hz", "phase": "streaming"}, settings=TIME, start="open",
    source="the reference sketch's boot output: banner, then millis,raw*HH")

print(json.dumps({
    "protocol": "textline",
    "format": "see SPEC.md section 8: bytes as 'text' (ASCII JSON string), 'hex', or 'chunks' [{at, text|hex}] "
              "fed at host time 'at' s; params.start 'settled' (a host past the start-up junk) or 'open' "
              "(start(0) first); params.tick: one on_tick at that time after the bytes; expect.decoded lists "
              "every output in order; frames check raw exactly, us/ohm to 1e-9 relative, t to 1e-9 s, "
              "index if given; expect.stats checks the counters given",
    "vectors": V,
}, indent=1, ensure_ascii=True))
