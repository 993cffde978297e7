// Package emulator is a local stand-in for the OCI Functions invoke API.
//
// It serves POST /{apiVersion}/functions/{functionId}/actions/invoke the way
// OCI does (OCI-style JSON errors, opc-request-id, 6 MiB request limit,
// fn-invoke-type: detached → 202), optionally verifies OCI request signatures
// (signature version 1, rsa-sha256), and answers each function according to a
// Behavior chosen per function: echo, fixed status, latency, injected
// failures (first N calls or a seeded ratio), hang, dropped connections,
// Retry-After, sized, gzip-compressed and trickled responses. It also
// answers the management API's GET /{apiVersion}/functions/{functionId}
// (GetFunction) with itself as the function's invokeEndpoint, or 404 for
// a function it does not know (Config.KnownFunctionsOnly). It is the dev-mode invoke target and the
// test double for the queue worker, so it also records what it saw (Stats,
// Calls) for assertions.
//
// The package owns:
//   - the HTTP surface (Emulator.Handler, Start/Close of its own listener);
//   - request signature verification (VerifyRequest, ParseAuthorization,
//     SigningString, LoadPublicKey), usable on its own;
//   - the behaviour model and its spec language (Behavior, ParseBehavior);
//   - counters and call records (Stats, Calls).
//
// Admin routes, not signed, for driving the emulator from outside a Go test:
//
//	GET  /emulator/stats                 JSON Stats
//	GET  /emulator/calls/{functionId}    recorded calls (Config.RecordCalls), without headers
//	PUT  /emulator/functions/{functionId} body = behaviour spec, e.g. "fail=2,fail_status=503"
//	GET  /emulator/functions/{functionId} current behaviour spec
//	POST /emulator/reset                 zero counters, call records and FailFirst progress
//	GET  /healthz                        "ok"
//
// An Emulator has no package-level state; every goroutine it starts is
// stopped by Close, and Close also releases handlers that are sleeping or
// hanging, so tests can shut it down promptly.
package emulator
