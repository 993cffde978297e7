package job

import "github.com/nats-io/nats.go"

// MessageSize is what m counts against the server's max payload and a
// stream's max message size: its encoded headers plus its body, as
// nats.go sends them.
func MessageSize(m *nats.Msg) int { return len(m.Data) + HeaderSize(m.Header) }

// HeaderSize is the size of h as NATS sends it: "NATS/1.0\r\n", the lines
// of every header (HeaderLinesSize), then "\r\n"; 0 for no headers.
// JetStream refuses a header block over 64 KiB.
func HeaderSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		n += HeaderLinesSize(k, vs)
	}
	return n
}

// HeaderLinesSize is the size of header k's lines in a header block:
// "k: v\r\n" for each of its values.
func HeaderLinesSize(k string, vs []string) int {
	n := 0
	for _, v := range vs {
		n += len(k) + len(": ") + len(v) + len("\r\n")
	}
	return n
}
