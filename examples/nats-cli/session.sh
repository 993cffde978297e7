#!/bin/sh
# Publishing jobs and reading outcomes with nothing but the nats CLI
# (https://github.com/nats-io/natscli). Start a worker first, e.g.
# `worker dev` (NATS on 127.0.0.1:4222, dev functions such as echo below).
# Each step is a command you can paste; `set -e` stops at the first failure.
set -eu
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export NATS_URL
ECHO=ocid1.fnfunc.oc1.dev.aaaaaaaaecho
MISSING=ocid1.fnfunc.oc1.dev.aaaaaaaamissing

# 1. A job: the body is the function's request body, byte for byte; the
#    metadata travels in headers. Nats-Msg-Id is the dedupe id and, with
#    no Invoke-Job-Id, the job id.
nats pub invoke.jobs.orders '{"order":42}' \
  -H "Invoke-Function-Id:$ECHO" \
  -H "Nats-Msg-Id:order-42" \
  -H "Content-Type:application/json"

# Publishing it again within the duplicate window (2 minutes) stores nothing
# new: a retrying publisher is safe.
nats pub invoke.jobs.orders '{"order":42}' -H "Invoke-Function-Id:$ECHO" -H "Nats-Msg-Id:order-42"

# 2. Its result, on invoke.results.<job-id>, kept 24 hours. Read it from the
#    stream, so it does not matter whether it was stored before you looked.
nats stream get INVOKE_RESULTS --last-for invoke.results.order-42
# Headers: Invoke-Status, Invoke-Attempts, Invoke-Duration-Ms, ...

# 3. Or be told: Invoke-Reply-To gets a copy of the result (core NATS, so
#    subscribe first; the stream keeps the result either way).
nats sub --count 1 order-replies.43 &
sleep 1
nats pub invoke.jobs.orders '{"order":43}' \
  -H "Invoke-Function-Id:$ECHO" -H "Nats-Msg-Id:order-43" -H "Invoke-Reply-To:order-replies.43"
wait

# 4. Options are headers too: a per-attempt timeout, a deadline after which
#    the job is dead-lettered as expired instead of run, the intent, a
#    detached invocation, trace context.
nats pub invoke.jobs.orders '{"order":44}' \
  -H "Invoke-Function-Id:$ECHO" -H "Nats-Msg-Id:order-44" \
  -H "Invoke-Timeout:30s" -H "Invoke-Deadline:2030-01-01T00:00:00Z" \
  -H "Fn-Intent:httprequest" -H "Fn-Invoke-Type:sync" \
  -H "traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# 5. A job that fails goes to invoke.dlq.<reason>.<job-id> with the original
#    body and headers and why (Invoke-Dlq-Reason, Invoke-Error, ...).
nats pub invoke.jobs.orders 'anyone?' -H "Invoke-Function-Id:$MISSING" -H "Nats-Msg-Id:order-45"
sleep 2
nats stream get INVOKE_DLQ --last-for 'invoke.dlq.*.order-45'

# 6. A body larger than the server's max payload (1 MiB on a stock
#    nats-server): store it in the job-bodies bucket and send the reference
#    in Invoke-Body-Object with an empty body. The worker fetches it (up to
#    the 6 MiB request limit) and deletes it once the result is stored.
head -c 3000000 /dev/urandom > /tmp/big.bin
nats obj put INVOKE_JOB_BODIES /tmp/big.bin --name jobs/order-46
nats pub invoke.jobs.orders '' \
  -H "Invoke-Function-Id:$ECHO" -H "Nats-Msg-Id:order-46" \
  -H "Invoke-Body-Object:INVOKE_JOB_BODIES/jobs/order-46"
sleep 2
# A result too large for a message comes back the same way: an empty body
# and Invoke-Body-Object naming where it is. (worker dev's embedded server
# takes 8 MiB messages, so there this echo fits a message; against a 1 MiB
# server it is stored.)
if nats stream get INVOKE_RESULTS --last-for invoke.results.order-46 | grep -q Invoke-Body-Object; then
  nats obj get INVOKE_RESULT_BODIES results/order-46 -O /tmp/big.out
  cmp /tmp/big.bin /tmp/big.out && echo "3 MB came back byte for byte"
fi

# 7. Events for a fan-out route (worker dev --config examples/fanout/worker.yaml):
#    publish them to the route's stream like to any stream; each becomes one
#    job per function.
nats pub shop.orders.created '{"order":47}' -H "X-Tenant:acme"
# A CloudEvent in binary mode (ce- headers) is passed on as a structured one.
nats pub shop.orders.paid '{"order":47,"paid":true}' \
  -H "ce-specversion:1.0" -H "ce-id:pay-47" -H "ce-source:/payments" \
  -H "ce-type:com.example.payment" -H "Content-Type:application/json"
