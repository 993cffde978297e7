package job

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// TraceCarrier lets an OpenTelemetry propagator (it implements
// propagation.TextMapCarrier) read and write the W3C trace context of a
// message's headers. NATS headers are case-sensitive and publishers spell
// traceparent in either case: Get finds a key in any case (Lookup), and Set
// replaces every spelling of the key with the key as given.
type TraceCarrier nats.Header

// Get returns the first value of key, in any case.
func (c TraceCarrier) Get(key string) string { return Lookup(nats.Header(c), key) }

// Set makes value the only value of key.
func (c TraceCarrier) Set(key, value string) {
	for k := range c {
		if k != key && strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the header names.
func (c TraceCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
