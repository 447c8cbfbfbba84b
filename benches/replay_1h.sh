#!/bin/sh
# 1 h of ECG + EDA at 1 kHz through `attune replay --speed max` into one subscriber (docs/performance.md).
# Run from the repository root after `cargo build --release`; prints the wall time from the
# subscriber's connection to the replay's exit.
B=${ATTUNE:-target/release/attune}; D=$(mktemp -d); F=${1:?usage: benches/replay_1h.sh RECORDING}
$B --socket $D/s.sock --data-dir $D/data -q replay --speed max --wait-subscribers 1 "$F" &
P=$!
until [ -S $D/s.sock ]; do sleep 0.005; done
$B --socket $D/s.sock listen > $D/out.ndjson &
L=$!
start=$(date +%s.%N)
wait $P
end=$(date +%s.%N)
wait $L 2>/dev/null
awk -v a="$start" -v b="$end" -v n="$(wc -l < $D/out.ndjson)" 'BEGIN { printf "replay wall: %.3f s; lines read by the subscriber: %d\n", b - a, n }'
rm -rf $D
