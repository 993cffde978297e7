// Package queue owns the NATS side of the product: connecting (URLs,
// credentials, TLS, endless reconnects), the embedded nats-server used when
// no URL is configured, creating or updating the three streams, the
// claim-check buckets and the shared durable pull consumer of the
// contract (docs/contract.md), publishing jobs with a dedupe id, storing and fetching bodies
// too large for a message (Bodies), and waiting for a job's outcome.
//
// It does not invoke functions or decide what happens to a job. Publishers
// use package client, which builds on it.
package queue
