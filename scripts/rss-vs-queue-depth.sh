#!/usr/bin/env bash
# Peak RSS of a worker process against the depth of the queue it drains.
# Separate processes (NATS, the emulator, the worker), so the figure is the
# worker's alone. Usage: scripts/rss-vs-queue-depth.sh [DEPTH...]
# (default: 1000 100000). Loopback only; everything it starts it stops.
set -euo pipefail
depths=("${@:-1000 100000}")
[ $# -gt 0 ] || depths=(1000 100000)
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin" ./cmd/worker ./cmd/natsd
fn=ocid1.fnfunc.oc1.phx.aaaaaaaarss
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for depth in "${depths[@]}"; do
  data=$(mktemp -d -p "$bin")
  nport=$(free_port); eport=$(free_port)
  "$bin/natsd" -js -sd "$data" -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 & nats=$!
  "$bin/worker" emulator --listen "127.0.0.1:$eport" --log-level error >/dev/null 2>&1 & emu=$!
  sleep 1
  common=(--nats "nats://127.0.0.1:$nport" --set invoke.oci.auth=none --set "invoke.endpoints=$fn=http://127.0.0.1:$eport" --set http.listen= --log-level error)
  # Create the streams, then stop: the jobs must queue up before a worker drains them.
  timeout 5 "$bin/worker" run "${common[@]}" >/dev/null 2>&1 || true
  python3 -c "
import json,sys
body='x'*1024
with open('$data/jobs.jsonl','w') as f:
    for i in range($depth): f.write(json.dumps({'function':'$fn','id':'rss-%d'%i,'body':body})+'\n')
"
  "$bin/worker" enqueue "${common[@]}" --file "$data/jobs.jsonl" >/dev/null
  "$bin/worker" run "${common[@]}" >/dev/null 2>&1 & w=$!
  # Wait until the jobs stream is empty, watching the worker's peak RSS.
  until "$bin/worker" enqueue "${common[@]}" --function "$fn" --id "probe-$depth" --body done --wait=60s >/dev/null 2>&1; do sleep 0.5; done
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$w/status")
  echo "queue depth $depth: worker peak RSS $((hwm / 1024)) MiB"
  kill $w $emu $nats; wait $w $emu $nats 2>/dev/null || true
done
