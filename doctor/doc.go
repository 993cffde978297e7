// Package doctor owns `worker doctor`: it checks a configuration before
// it is deployed, explains the policy it makes (how long a job may retry,
// how long a crashed worker's jobs wait, what goes through the claim
// check), and then, unless told not to, checks the live system the
// configuration points at: NATS and JetStream, the streams, buckets and
// consumer as the server has them, the OCI credentials, each configured
// endpoint's DNS and TLS, and the local clock against a server's.
//
// Every problem is a Finding that says what is wrong, why it matters and
// how to fix it. The package owns the checks and their wording; it does
// not own the rules the worker enforces at start-up (config.Validate, whose
// errors it reports as findings) nor anything it inspects: it never
// creates, updates or deletes a stream, bucket or consumer, and never
// invokes a function.
package doctor
