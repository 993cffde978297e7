#!/usr/bin/env bash
# A healthy function's latency with and without a poisoned backlog (issue 11).
#
# Starts `worker dev` (embedded NATS, the emulator and the worker in one
# process, the dev functions echo, slow, broken...) on a temp data dir and
# free loopback ports, then:
#   baseline  enqueue HEALTHY_JOBS jobs for echo and wait for each outcome;
#   poisoned  enqueue BACKLOG_BROKEN jobs for broken (always 502) and
#             BACKLOG_SLOW jobs for slow (2 s a call) at once, wait until
#             broken's breaker is open, then enqueue the same number of echo
#             jobs behind them and wait for each outcome;
# and prints both batches' latency (p50, p95, max, wall time), their ratio,
# and what the worker did meanwhile (its metrics, CPU and RSS).
# A job's latency runs from the start of the `worker enqueue --wait`
# command that published it to its outcome line on that command's stdout,
# so it includes the command's start and connection (see the baseline).
# Metrics are scraped from the admin endpoint about once a second; the
# consumer gauges among them (pending, ack pending, waiting copies) are the
# worker's own samples, taken every 15 s.
#
# Usage: scripts/isolation.sh
# Environment (defaults):
#   HEALTHY_JOBS (100)        echo jobs per batch
#   BACKLOG_BROKEN (100000)   jobs for broken
#   BACKLOG_SLOW (100000)     jobs for slow
#   SETTLE (20)               seconds to wait at most for the breaker to open
#   SETTLE_MIN (0)            seconds to wait at least (the issue waited 20)
#   HEALTHY_WAIT (280s)       bound on each echo batch (worker enqueue --wait=)
#   ENQUEUE_TIMEOUT (600)     bound on each backlog enqueue, seconds
#   ISOLATION_SET ("")        worker settings, "KEY=VALUE ..." (--set)
#   DEV_LOG_LEVEL (warn)      worker dev's log level (its log is in the temp dir)
#   KEEP (0)                  1: keep the temp dir (logs, samples, outcomes)
# Loopback only; everything it starts it stops, on any exit.
set -euo pipefail

N=${HEALTHY_JOBS:-100}
B=${BACKLOG_BROKEN:-100000}
S=${BACKLOG_SLOW:-100000}
SETTLE=${SETTLE:-20}
SETTLE_MIN=${SETTLE_MIN:-0}
HEALTHY_WAIT=${HEALTHY_WAIT:-280s}
ENQUEUE_TIMEOUT=${ENQUEUE_TIMEOUT:-600}

ECHO=ocid1.fnfunc.oc1.dev.aaaaaaaaecho
SLOW=ocid1.fnfunc.oc1.dev.aaaaaaaaslow
BROKEN=ocid1.fnfunc.oc1.dev.aaaaaaaabroken

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
dev=""
sampler=""
children=() # enqueue commands and readers, by pid
cleanup() {
  local rc=$?
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$dev" ] && kill -0 "$dev" 2>/dev/null; then
    kill -TERM "$dev" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$dev" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dev" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# calc EXPR prints EXPR's value (awk: no bc on a bare machine).
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# ratio A B [DIGITS] prints A/B (to one decimal), or - when either is
# unknown or B is 0.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%." d "f\n", a / b }'; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# free_port prints a loopback port nobody listens on, below the ephemeral
# range (so no outgoing connection holds it either).
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % (eph_low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  return 1
}

log "building"
go build -o "$tmp/worker" ./cmd/worker
W="$tmp/worker"

# start_dev starts worker dev on fresh ports; it fails when dev exits
# before it is ready (a port taken meanwhile, say).
start_dev() {
  nport=$(free_port); eport=$(free_port); aport=$(free_port)
  admin="http://127.0.0.1:$aport"
  NATS=(--nats "nats://127.0.0.1:$nport" --log-level error)
  local sets=(--set "nats.embedded.store_dir=$tmp/data/nats" --set "nats.embedded.listen=127.0.0.1:$nport"
    --set "emulator.listen=127.0.0.1:$eport")
  for s in ${ISOLATION_SET:-}; do sets+=(--set "$s"); done
  log "starting worker dev (NATS :$nport, emulator :$eport, admin :$aport)"
  "$W" dev --http "127.0.0.1:$aport" "${sets[@]}" --log-format json --log-level "${DEV_LOG_LEVEL:-warn}" >"$tmp/dev.out" 2>"$tmp/dev.log" &
  dev=$!
  for _ in $(seq 1 300); do
    curl -fs "$admin/readyz" >/dev/null 2>&1 && return 0
    if ! kill -0 "$dev" 2>/dev/null; then
      wait "$dev" 2>/dev/null || true
      dev=""
      cat "$tmp/dev.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "worker dev not ready after 30 s" >&2
  kill -TERM "$dev" 2>/dev/null || true
  wait "$dev" 2>/dev/null || true
  dev=""
  return 1
}
started=no
for _ in 1 2 3; do start_dev && { started=yes; break; }; done
[ "$started" = yes ] || exit 1

# make_jobs FILE FUNCTION PREFIX COUNT writes COUNT one-line jobs.
make_jobs() {
  awk -v fn="$2" -v p="$3" -v n="$4" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"function\":\"%s\",\"id\":\"%s-%d\",\"body\":\"x\"}\n", fn, p, i }' >"$1"
}

# metric NAME [REGEX] sums the samples of NAME whose labels match REGEX
# in the scrape file $scrape.
metric() {
  awk -v name="$1" -v re="${2:-}" '
    $1 !~ /^#/ { split($1, a, "{"); if (a[1] == name && (re == "" || $1 ~ re)) s += $NF }
    END { printf "%d\n", s }' "$scrape"
}
scrape=$tmp/metrics
scrape_now() { curl -fs "$admin/metrics" >"$scrape.new" && mv "$scrape.new" "$scrape"; }

# proc_cpu prints worker dev's user+system CPU seconds; proc_rss its RSS
# and peak RSS in MiB.
clk=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$clk" '{ printf "%.1f\n", ($14 + $15) / t }' "/proc/$dev/stat"; }
proc_rss() { awk '/VmRSS/ { r = $2 } /VmHWM/ { h = $2 } END { printf "%d %d\n", r / 1024, h / 1024 }' "/proc/$dev/status"; }

# sample writes one line a second to $tmp/samples-$1 while it runs.
sample() {
  set +e
  local out=$tmp/samples-$1 t0=$EPOCHREALTIME scrape=$tmp/metrics-sampler
  echo "t ack_pending/max pending waiting waits(retry,breaker_open,fair_share) returns completed dead_lettered cpu_s rss_mib" >"$out"
  while sleep 1; do
    scrape_now || continue
    printf '%.0f %d/%d %d %d %d(%d,%d,%d) %d %d %d %s %s\n' "$(calc "$EPOCHREALTIME - $t0" 0)" \
      "$(metric invoke_worker_consumer_ack_pending)" "$(metric invoke_worker_consumer_max_ack_pending)" \
      "$(metric invoke_worker_consumer_pending)" "$(metric invoke_worker_jobs_waiting)" \
      "$(metric invoke_worker_waits_total)" "$(metric invoke_worker_waits_total 'cause="retry"')" \
      "$(metric invoke_worker_waits_total 'cause="breaker_open"')" "$(metric invoke_worker_waits_total 'cause="fair_share"')" \
      "$(metric invoke_worker_wait_returns_total)" \
      "$(metric invoke_worker_jobs_total 'outcome="completed"')" "$(metric invoke_worker_jobs_total 'outcome="dead_lettered')" \
      "$(proc_cpu)" "$(proc_rss | cut -d' ' -f1)" >>"$out"
  done
}

# healthy NAME enqueues N echo jobs with --wait, timestamping each outcome
# line, and leaves "p50 p95 max wall done" in $tmp/stats-NAME.
healthy() {
  local name=$1 file=$tmp/echo-$1.jsonl rc=0
  make_jobs "$file" "$ECHO" "$name" "$N"
  # In the background, waited for: a signal to this script is then
  # handled at once, not once the command is done.
  mkfifo "$tmp/fifo-$name"
  local t0=$EPOCHREALTIME
  "$W" enqueue "${NATS[@]}" --file "$file" --wait="$HEALTHY_WAIT" >"$tmp/fifo-$name" 2>"$tmp/enqueue-$name.err" &
  local ep=$!
  children+=("$ep")
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done <"$tmp/fifo-$name" >"$tmp/outcomes-$name" &
  local rp=$!
  children+=("$rp")
  wait "$ep" || rc=$?
  wait "$rp" || true
  local t1=$EPOCHREALTIME
  awk -v t0="$t0" '/"outcome":"completed"/ { printf "%.3f\n", $1 - t0 }' "$tmp/outcomes-$name" | sort -n >"$tmp/lat-$name"
  awk -v n="$N" -v wall="$(calc "$t1 - $t0")" '
    { v[NR] = $1 }
    END {
      done = NR
      if (done == 0) { printf "- - - %.2f 0\n", wall; exit }
      p50 = v[int((done - 1) * 0.50) + 1]; p95 = v[int((done - 1) * 0.95) + 1]
      printf "%.2f %.2f %.2f %.2f %d\n", p50, p95, v[done], wall, done
    }' "$tmp/lat-$name" >"$tmp/stats-$name"
  [ "$rc" = 0 ] || log "$name: enqueue --wait exited $rc: $(tail -n 2 "$tmp/enqueue-$name.err" | tr '\n' ' ')"
}

# --- baseline ---------------------------------------------------------------
log "baseline: $N echo jobs on an idle worker"
healthy baseline
read -r bp50 bp95 bmax bwall bdone <"$tmp/stats-baseline"
log "baseline: $bdone/$N completed; p50 ${bp50}s p95 ${bp95}s max ${bmax}s; wall ${bwall}s"

# --- poisoned ---------------------------------------------------------------
log "poisoned: enqueueing $B jobs for broken and $S for slow"
make_jobs "$tmp/broken.jsonl" "$BROKEN" broken "$B"
make_jobs "$tmp/slow.jsonl" "$SLOW" slow "$S"
sample poisoned 2>"$tmp/sampler.err" &
sampler=$!
te0=$EPOCHREALTIME
pids=()
if [ "$B" -gt 0 ]; then
  timeout "$ENQUEUE_TIMEOUT" "$W" enqueue "${NATS[@]}" --file "$tmp/broken.jsonl" >/dev/null 2>"$tmp/enqueue-broken.err" &
  pids+=($!)
fi
if [ "$S" -gt 0 ]; then
  timeout "$ENQUEUE_TIMEOUT" "$W" enqueue "${NATS[@]}" --file "$tmp/slow.jsonl" >/dev/null 2>"$tmp/enqueue-slow.err" &
  pids+=($!)
fi
children+=("${pids[@]}")
for p in "${pids[@]}"; do wait "$p" || { log "backlog enqueue failed:"; cat "$tmp"/enqueue-broken.err "$tmp"/enqueue-slow.err >&2; exit 1; }; done
enq=$(calc "$EPOCHREALTIME - $te0" 1)
log "backlog enqueued in ${enq}s ($(ratio "$((B + S))" "$enq" 0) jobs/s)"

log "waiting for broken's breaker to open (at least ${SETTLE_MIN}s, at most ${SETTLE}s)"
opened=no
ts=$EPOCHREALTIME
while :; do
  scrape_now
  [ "$(metric invoke_worker_breaker_state 'aaaaaaaabroken')" = 2 ] && opened=yes
  el=$(calc "$EPOCHREALTIME - $ts" 0)
  [ "$opened" = yes ] && [ "$el" -ge "$SETTLE_MIN" ] && break
  [ "$el" -ge "$SETTLE" ] && [ "$el" -ge "$SETTLE_MIN" ] && break
  sleep 0.5
done
scrape_now
settled=$(calc "$EPOCHREALTIME - $ts" 1)
cp "$scrape" "$tmp/metrics-before"
log "breaker open: $opened; waits so far $(metric invoke_worker_waits_total), jobs completed $(metric invoke_worker_jobs_total 'outcome="completed"')"
w0=$(metric invoke_worker_waits_total)
echo_waits0=$(metric invoke_worker_waits_total aaaaaaaaecho)
cpu0=$(proc_cpu)

log "poisoned: $N echo jobs behind the backlog"
th0=$EPOCHREALTIME
healthy poisoned
th1=$EPOCHREALTIME
scrape_now
cp "$scrape" "$tmp/metrics-after"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""
read -r pp50 pp95 pmax pwall pdone <"$tmp/stats-poisoned"
log "poisoned: $pdone/$N completed; p50 ${pp50}s p95 ${pp95}s max ${pmax}s; wall ${pwall}s"

# --- report -----------------------------------------------------------------
span=$(calc "$th1 - $th0" 1)
w1=$(metric invoke_worker_waits_total)
read -r rss hwm < <(proc_rss)
echo
echo "isolation: $N echo jobs; backlog $B broken (always 502) + $S slow (2 s a call); worker dev defaults${ISOLATION_SET:+ with $ISOLATION_SET}"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(go env GOVERSION); load average $(cut -d' ' -f1 /proc/loadavg) at the end"
echo "backlog enqueued in ${enq}s; echo jobs enqueued ${settled}s after that; broken's breaker open by then: $opened"
echo
printf '  %-9s %5s %9s %9s %9s %9s %6s\n' scenario N p50 p95 max wall "done"
printf '  %-9s %5s %8ss %8ss %8ss %8ss %6s\n' baseline "$N" "$bp50" "$bp95" "$bmax" "$bwall" "$bdone"
printf '  %-9s %5s %8ss %8ss %8ss %8ss %6s\n' poisoned "$N" "$pp50" "$pp95" "$pmax" "$pwall" "$pdone"
printf '  %-9s %5s %9s %9s %9s %9s\n' "ratio" "" "$(ratio "$pp50" "$bp50")" "$(ratio "$pp95" "$bp95")" "$(ratio "$pmax" "$bmax")" "$(ratio "$pwall" "$bwall")"
echo
scrape=$tmp/metrics-before
echo "consumer gauges (the worker samples them every 15 s, so they lag by up to that):"
echo "when the echo jobs were enqueued: consumer pending $(metric invoke_worker_consumer_pending), ack pending $(metric invoke_worker_consumer_ack_pending) of $(metric invoke_worker_consumer_max_ack_pending), waiting copies $(metric invoke_worker_jobs_waiting)"
scrape=$tmp/metrics-after
echo "when they were done:             consumer pending $(metric invoke_worker_consumer_pending), ack pending $(metric invoke_worker_consumer_ack_pending) of $(metric invoke_worker_consumer_max_ack_pending), waiting copies $(metric invoke_worker_jobs_waiting)"
echo "waits (copies stored) while the echo jobs waited: $((w1 - w0)) in ${span}s ($(ratio "$((w1 - w0))" "$span" 0) a second); worker dev CPU $(calc "$(proc_cpu) - $cpu0" 1) s over it"
echo "totals: waits by cause: $(for c in retry breaker_open fair_share function_limit rate_limit body_unavailable; do printf '%s %d, ' "$c" "$(metric invoke_worker_waits_total "cause=\"$c\"")"; done | sed 's/, $//')"
echo "        waiting copies returned $(metric invoke_worker_wait_returns_total); jobs completed $(metric invoke_worker_jobs_total 'outcome="completed"'), dead-lettered $(metric invoke_worker_jobs_total 'outcome="dead_lettered')"
echo "        breaker transitions: $(for c in open half-open closed; do printf '%s %d, ' "$c" "$(metric invoke_worker_breaker_transitions_total "to=\"$c\"")"; done | sed 's/, $//'); jobs handed back in place $(metric invoke_worker_deferred_total)"
echo "        copies not stored $(metric invoke_worker_wait_failures_total); failed pulls $(metric invoke_worker_fetch_errors_total); echo jobs set waiting themselves while behind the backlog: $(( $(metric invoke_worker_waits_total aaaaaaaaecho) - echo_waits0 ))"
echo "worker dev (worker + embedded NATS + emulator): RSS ${rss} MiB, peak ${hwm} MiB, CPU $(proc_cpu) s in all"
echo
echo "samples during the poisoned phase (t from the backlog's enqueue, seconds):"
awk 'NR == 1 || $1 >= nx { if (NR > 1) nx = $1 + 10; for (i = 1; i <= NF; i++) printf "  %-12s", $i; print "" }' "$tmp/samples-poisoned"
