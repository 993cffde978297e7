// Package invoke owns calling a function: building the OCI Functions invoke
// request (POST /{apiVersion}/functions/{functionId}/actions/invoke on the
// function's invoke endpoint), signing it with the OCI Go SDK's request
// signer, bounding what is sent and read, and describing every failure in a
// way a caller can branch on (status, OCI error code, network error,
// timeout) together with the contract's rule of which failures are worth
// retrying (docs/contract.md, "Dead-letter reasons").
//
// It knows nothing of NATS, retries over time or circuit breakers: one call
// of Client.Invoke is one attempt. The local emulator that speaks the same
// API lives in the emulator sub-package.
package invoke
