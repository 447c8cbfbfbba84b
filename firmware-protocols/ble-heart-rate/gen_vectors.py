#!/usr/bin/env python3
"""Writes vectors.json. Every expected value below is typed by hand from the field layout of
SPEC.md section 2 (or copied from DEVICES.md section 1.2 for H1-H10); only rr_ms is computed,
as raw * 1000 / 1024. Nothing here calls attune. Run: python3 gen_vectors.py > vectors.json"""
import json

HRM, BSL, BAT = "0x2A37", "0x2A38", "0x2A19"
D12 = "DEVICES.md section 1.2 golden vector"


def m(hr, u16=False, contact=None, ee=None, rr=None, trailing=False):
    """A decoded 0x2A37 measurement; rr None = bit 4 clear."""
    return {
        "hr_bpm": hr,
        "hr_u16": u16,
        "contact": contact,
        "energy_kj": ee,
        "rr_present": rr is not None,
        "rr_raw": rr or [],
        "rr_ms": [r * 1000 / 1024 for r in (rr or [])],
        "trailing_byte": trailing,
    }


def v(id, hex, ch, expect, prov, source):
    return {"id": id, "hex": hex.replace(" ", "").lower(), "params": {"characteristic": ch},
            "expect": expect, "provenance": prov, "source": source}


def trunc(field, need, got):
    return {"error": "truncated", "field": field, "need": need, "got": got}


S, SD, SDM = ["SIG"], ["SIG", "DERIVED"], ["SIG", "MOCK"]
vectors = [
    v("H1", "16 3C 20 03", HRM, m(60, contact=True, rr=[800]), SDM,
      D12 + " H1; also delivered through btleplug + libdbus + dbus-daemon from python-dbusmock (DEVICES.md section 8.2)"),
    v("H2", "1F 2C 01 10 00 00 04 00 02", HRM, m(300, True, True, 16, [1024, 512]), SDM,
      D12 + " H2; also delivered through btleplug + libdbus + dbus-daemon from python-dbusmock (DEVICES.md section 8.2)"),
    v("H3", "00 48", HRM, m(72), SD, D12 + " H3: contact not supported"),
    v("H4", "04 48", HRM, m(72, contact=False), SD, D12 + " H4: contact supported, no contact"),
    v("H5", "02 48", HRM, m(72), SD, D12 + " H5: bit 1 without bit 2 is 'not supported'"),
    v("H6", "10 48 DA 03 E4 03", HRM, m(72, rr=[986, 996]), SD, D12 + " H6"),
    v("H7", "10 48 DA 03 E4", HRM, m(72, rr=[986], trailing=True), SD, D12 + " H7: one odd trailing byte, dropped"),
    v("H8", "E0 48", HRM, m(72), SD, D12 + " H8: reserved bits 5-7 ignored"),
    v("H9", "01 48", HRM, trunc("heart_rate", 3, 2), SD, D12 + " H9: u16 HR announced, 1 byte present"),
    v("H10", "", HRM, {"error": "empty"}, SD, D12 + " H10: no flags byte"),
    # Beyond DEVICES.md: laid out by hand from the SIG field table.
    v("contact-11", "06 48", HRM, m(72, contact=True), SD, "bits 1-2 = 11: supported, contact"),
    v("polar-h10-flags", "10 40 00 03", HRM, m(64, rr=[768]), SD,
      "flags 0x10 as reported for Polar H10 (3P via DEVICES.md section 1.1: RR while contact reads not supported); bytes ours"),
    v("polar-h7-flags", "16 40 00 03", HRM, m(64, contact=True, rr=[768]), SD,
      "flags 0x16 (contact supported + detected, RR), as reported for Polar H7; bytes ours"),
    v("ee-u8", "08 48 34 12", HRM, m(72, ee=0x1234), SD, "bit 3: EE u16 LE, kJ: 0x1234 = 4660 kJ"),
    v("ee-u16", "09 2C 01 E8 03", HRM, m(300, True, ee=1000), SD, "u16 HR 300 + EE 1000 kJ"),
    v("u16-ee-rr", "19 2C 01 E8 03 00 03 20 03", HRM, m(300, True, None, 1000, [768, 800]), SD,
      "u16 HR + EE + 2 RR, contact not supported"),
    v("u16-ee-rr-contact-7rr", "1F 96 00 FF FF " + " ".join(["00 04"] * 7), HRM,
      m(150, True, True, 65535, [1024] * 7), SD,
      "19 bytes: u16 HR 150 + EE 65535 (maximum) + 7 RR, the most that fit the 20 bytes of the default ATT MTU (DEVICES.md section 1.1)"),
    v("u8-9rr", "10 50 " + " ".join(["BC 02", "C6 02", "D0 02", "DA 02", "E4 02", "EE 02", "F8 02", "02 03", "0C 03"]), HRM,
      m(80, rr=[700, 710, 720, 730, 740, 750, 760, 770, 780]), SD,
      "20 bytes: u8 HR + 9 RR, the most that fit the default ATT MTU (DEVICES.md section 1.1), oldest first"),
    v("rr-bit-empty", "10 48", HRM, m(72, rr=[]), SD, "bit 4 with no RR bytes: an empty list, not an error (DEVICES.md section 1.1)"),
    v("rr-bit-empty-ee", "19 48 00 10 00", HRM, m(72, True, None, 16, []), SD, "u16 HR + EE, bit 4, no RR"),
    v("rr-only-odd-byte", "10 48 07", HRM, m(72, rr=[], trailing=True), SD, "bit 4, a single odd byte: no RR, trailing byte"),
    v("u16-rr-odd", "11 48 00 00 04 00 02 99", HRM, m(72, True, rr=[1024, 512], trailing=True), SD,
      "u16 HR, 2 RR then one odd byte: both RR kept"),
    v("reserved-all-rr", "F6 3C 20 03", HRM, m(60, contact=True, rr=[800]), SD, "H1 with reserved bits 5-7 set: same measurement"),
    v("reserved-u16-ee", "A9 2C 01 10 00", HRM, m(300, True, ee=16), SD, "reserved bits 5 and 7 with u16 HR + EE"),
    v("tail-without-rr-bit", "00 48 DA 03 E4", HRM, m(72), ["DERIVED"],
      "attune's reading (SIG is silent): bytes after the header with bit 4 clear are ignored"),
    v("hr-zero", "00 00", HRM, m(0), SD, "HR 0 is a value, not an error"),
    v("hr-u16-small", "01 48 00", HRM, m(72, True), SD, "u16 format carrying a small value"),
    v("flags-only", "00", HRM, trunc("heart_rate", 2, 1), SD, "flags byte alone: u8 HR missing"),
    v("u16-hr-missing-ee", "09 2C 01 10", HRM, trunc("energy_expended", 5, 4), SD, "u16 HR + EE announced, 1 EE byte present"),
    v("u8-ee-missing", "18 48", HRM, trunc("energy_expended", 4, 2), SD, "EE announced, none present (RR bit too)"),
    # 0x2A38 Body Sensor Location.
    v("bsl-other", "00", BSL, {"body_location": "other", "code": 0}, S, "SIG Body Sensor Location: 0 other"),
    v("bsl-chest", "01", BSL, {"body_location": "chest", "code": 1}, S, "SIG: 1 chest"),
    v("bsl-wrist", "02", BSL, {"body_location": "wrist", "code": 2}, S, "SIG: 2 wrist"),
    v("bsl-finger", "03", BSL, {"body_location": "finger", "code": 3}, S, "SIG: 3 finger"),
    v("bsl-hand", "04", BSL, {"body_location": "hand", "code": 4}, S, "SIG: 4 hand"),
    v("bsl-ear-lobe", "05", BSL, {"body_location": "ear_lobe", "code": 5}, S, "SIG: 5 ear lobe"),
    v("bsl-foot", "06", BSL, {"body_location": "foot", "code": 6}, S, "SIG: 6 foot"),
    v("bsl-reserved", "07", BSL, {"body_location": "unknown", "code": 7}, SD, "7-255 reserved for future use: kept as unknown, not an error"),
    v("bsl-reserved-ff", "FF", BSL, {"body_location": "unknown", "code": 255}, SD, "reserved 255"),
    v("bsl-extra", "01 05", BSL, {"body_location": "chest", "code": 1}, ["DERIVED"], "attune: extra bytes ignored, the first is the value"),
    v("bsl-empty", "", BSL, trunc("body_sensor_location", 1, 0), ["DERIVED"], "attune: an empty value is an error"),
    # 0x2A19 Battery Level.
    v("bat-0", "00", BAT, {"battery_percent": 0}, S, "SIG Battery Level: u8 percent, 0-100"),
    v("bat-87", "57", BAT, {"battery_percent": 87}, S, "0x57 = 87 %"),
    v("bat-100", "64", BAT, {"battery_percent": 100}, S, "100 % is the top of the range"),
    v("bat-101", "65", BAT, {"error": "out_of_range", "value": 101}, SD, "101-255 are outside 0-100: an error, never clamped"),
    v("bat-ff", "FF", BAT, {"error": "out_of_range", "value": 255}, SD, "255 is outside 0-100"),
    v("bat-empty", "", BAT, {"error": "empty"}, ["DERIVED"], "attune: an empty value is an error"),
    v("bat-extra", "2A C8", BAT, {"battery_percent": 42}, ["DERIVED"], "attune: extra bytes ignored, the first is the value"),
]

print(json.dumps({
    "protocol": "ble-heart-rate",
    "format": "see SPEC.md section 6: 'hex' is one characteristic value (notification or read); params.characteristic 0x2A37 / 0x2A38 / 0x2A19 picks the decoder; expect is the decoded value or {error, ...}; 0x2A37 checks every field, rr_ms exactly (raw * 1000 / 1024 is exact in binary)",
    "vectors": vectors,
}, indent=1, ensure_ascii=True))
