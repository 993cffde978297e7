#!/usr/bin/env bash
# Peak RSS of a worker process against the depth of the queue it drains.
# Separate processes (NATS, the emulator, the worker), so the figure is the
# worker's alone. Every depth drains the same number of jobs (the largest
# depth), so that only the depth differs: at depth D the jobs are queued D
# at a time, the next D once the previous are done; at the largest depth
# all of them are queued before the worker starts.
# Usage: scripts/rss-vs-queue-depth.sh [DEPTH...] (default: 1000 100000).
# Extra worker settings: RSS_SET="worker.gc_min_heap=0 ...".
# Loopback only; everything it starts it stops.
set -euo pipefail
depths=("$@")
[ $# -gt 0 ] || depths=(1000 100000)
total=0
for d in "${depths[@]}"; do [ "$d" -gt "$total" ] && total=$d; done
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
  for s in ${RSS_SET:-}; do common+=(--set "$s"); done
  # Create the streams, then stop: the first jobs must queue up before a worker drains them.
  timeout 5 "$bin/worker" run "${common[@]}" >/dev/null 2>&1 || true
  chunks=$(( (total + depth - 1) / depth ))
  for c in $(seq 0 $((chunks - 1))); do
    python3 -c "
import json
body='x'*1024
with open('$data/jobs-$c.jsonl','w') as f:
    for i in range($c*$depth, min(($c+1)*$depth, $total)): f.write(json.dumps({'function':'$fn','id':'rss-%d'%i,'body':body})+'\n')
"
  done
  "$bin/worker" enqueue "${common[@]}" --file "$data/jobs-0.jsonl" >/dev/null 2>&1
  "$bin/worker" run "${common[@]}" >/dev/null 2>&1 & w=$!
  for c in $(seq 0 $((chunks - 1))); do
    if [ "$c" -gt 0 ]; then "$bin/worker" enqueue "${common[@]}" --file "$data/jobs-$c.jsonl" >/dev/null 2>&1; fi
    # A probe behind the chunk: once it is done, so is the chunk.
    until "$bin/worker" enqueue "${common[@]}" --function "$fn" --id "probe-$c" --body done --wait=60s >/dev/null 2>&1; do sleep 0.5; done
  done
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$w/status")
  echo "queue depth $depth ($total jobs in all): worker peak RSS $((hwm / 1024)) MiB"
  kill $w $emu $nats; wait $w $emu $nats 2>/dev/null || true
done
