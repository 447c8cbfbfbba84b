#!/usr/bin/env bash
# TEST HARNESS ONLY: run "$@" against a private bus where python-dbusmock plays BlueZ.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf=${BUS_CONF:-$here/bus.conf}
scenario=${SCENARIO:-$here/ble_scenario.py}
export DBUS_SYSTEM_BUS_ADDRESS="unix:abstract=attune-ble-$$"   # unique per run; no files
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_for() {  # retry a command for up to 10 s
  local end=$((SECONDS + 10))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || { echo "timed out: $*" >&2; exit 1; }
    sleep 0.05
  done
}
call() { dbus-send --system --print-reply "$@"; }    # --system honours DBUS_SYSTEM_BUS_ADDRESS

dbus-daemon --config-file="$conf" --address="$DBUS_SYSTEM_BUS_ADDRESS" --nofork 2>/dev/null & pids+=($!)
wait_for call --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId
/usr/bin/python3 -m dbusmock --system -t bluez5 >/dev/null & pids+=($!)
wait_for call --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetNameOwner string:org.bluez
/usr/bin/python3 "$scenario" & scen=$!; pids+=("$scen")
# start the client only once hci0 exists, or adapters() comes back empty
wait_for call --dest=org.bluez /org/bluez/hci0 org.freedesktop.DBus.Properties.Get \
  string:org.bluez.Adapter1 string:Powered
rc=0
"$@" || rc=$?
if (( rc == 0 )); then wait "$scen" || { echo "scenario failed" >&2; rc=1; }; fi
exit "$rc"
