// Package bench is the load-test instrument behind `worker bench`: it runs
// the full worker against a fresh NATS (embedded, or fresh streams on a
// given server) and the in-process function emulator, enqueues a fixed
// number of jobs, and measures throughput, end-to-end latency (enqueue to
// result), the latency the worker adds on top of the function's own time,
// CPU and allocations per job, and peak RSS.
//
// With Config.Ceilings it also measures, in the same run and with the same
// job count, what bounds the worker from above: (a) a NATS-only loop
// (consume, publish a result, ack), (b) the machine's RSA-2048 signing
// rate on all cores, (c) HTTP round trips to the emulator without NATS,
// signed and unsigned, and (d) the bare minimum loop (consume, sign, POST,
// publish, ack) with nothing else. The worker's throughput is reported as
// a ratio of (d) and of (b).
//
// With Config.Spawn each consumer under test (the worker, (a), (d)) runs in
// a fresh process of its own (ServeConsumer), so that its CPU, allocations,
// peak RSS and garbage collection are its own, as in production; the load
// side then holds its own collector during measured windows. Without it,
// everything shares this process.
//
// The package does not know how to wire the worker: the caller supplies it
// (Config.Worker, or the consumer process's ConsumerConfig), so that
// `worker bench` runs exactly the service that `worker run` runs. Every load loop stops by itself, on its job count or
// on Config.Timeout, and only ever talks to 127.0.0.1 unless
// Config.NATSURL names another NATS server.
package bench
