"""Validates NDJSON daemon messages (stdin) against docs/protocol.schema.json.

Usage: attune listen ... | python3 tests/python/validate_messages.py docs/protocol.schema.json
Prints one JSON line: {"valid": N, "invalid": [[line_no, error], ...], "types": {...}}.
Needs the `jsonschema` package (.ci/run installs it).
"""
import collections
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
validator_cls = jsonschema.validators.validator_for(schema)
root = validator_cls(schema)
daemon = validator_cls({**schema, "$ref": "#/$defs/daemonMessage"})
valid, invalid, types = 0, [], collections.Counter()
for i, line in enumerate(sys.stdin, 1):
    msg = json.loads(line)
    types[msg.get("type")] += 1
    errors = sorted(daemon.iter_errors(msg), key=lambda e: e.path)
    if errors:
        invalid.append([i, errors[0].message[:200]])
    else:
        valid += 1
print(json.dumps({"valid": valid, "invalid": invalid[:10], "types": types}))
