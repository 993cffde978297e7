// Package queue owns the NATS side of the product: connecting (URLs,
// credentials, TLS, endless reconnects), the embedded nats-server used when
// no URL is configured, creating or updating the three streams, the
// claim-check buckets and the shared durable pull consumer of the
// contract (docs/contract.md), a job's message with its dedupe id (Job),
// and storing and fetching bodies too large for a message (Bodies).
//
// It does not invoke functions or decide what happens to a job. Publishers
// use package client, which builds on it and waits for outcomes.
package queue
