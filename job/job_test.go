package job

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestValidateFunctionID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"ocid1.fnfunc.oc1.phx.aaaaaaaab4faofrfkxecohhjuivjq262pu", true},
		{"ocid1.fnfunc.oc1.us-phoenix-1.aaaaaaaab4fa", true},
		{"ocid1.fnfunc.oc1..aaaaaaaab4fa", true},           // no region
		{"ocid1.fnfunc.oc1.phx.future.aaaaaaaab4fa", true}, // future-use segment
		{"ocid1.fnapp.oc1.phx.aaaaaaaab4fa", false},        // an application
		{"ocid1.fnfunc.oc1.phx.", false},                   // no unique id
		{"ocid1.fnfunc.OC1.phx.aaaa", false},               // upper-case realm
		{"ocid1.fnfunc.oc1.phx.aa/aa", false},              // path injection
		{"ocid1.fnfunc.oc1.phx.a.b.c", false},              // too many segments
		{"", false},
	} {
		if err := ValidateFunctionID(c.id); (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.id, err, c.ok)
		}
	}
}

func TestParseDefaultsAndFallbackID(t *testing.T) {
	t.Parallel()
	h := nats.Header{"invoke-function-id": {"ocid1.fnfunc.oc1.phx.aaaa"}, "fn-intent": {"CloudEvent"}}
	j, err := Parse(Message{Header: h, Data: []byte("x"), Stream: "INVOKE_JOBS", Seq: 7, StoreAt: time.Unix(1, 0)}, Limits{MaxBody: 6 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "INVOKE_JOBS-7" || j.FunctionID != "ocid1.fnfunc.oc1.phx.aaaa" || j.Intent != "cloudevent" || j.InvokeType != "sync" {
		t.Fatalf("%+v", j)
	}
	h.Set(HeaderJobID, "bad id")
	j, err = Parse(Message{Header: h, Stream: "S", Seq: 8}, Limits{})
	if !errors.Is(err, ErrInvalid) || j.ID != "S-8" {
		t.Fatalf("bad job id: %v, id %q", err, j.ID)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	if got := OneLine("a\nb\t c"); got != "a b c" {
		t.Fatalf("%q", got)
	}
	long := OneLine(strings.Repeat("é", 2000))
	if len(long) > MaxErrorHeaderBytes || !strings.HasSuffix(long, "…") || strings.ContainsRune(long, '\uFFFD') {
		t.Fatalf("cut badly: %d bytes", len(long))
	}
}

// FuzzParse: no input makes Parse panic, and the job id it returns is
// always subject-safe, so a dead-letter subject can be built from it.
func FuzzParse(f *testing.F) {
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "id-1", "httprequest", "sync", "30s", "2026-01-01T00:00:00Z", "reply.to", []byte("body"))
	f.Add("", "a.b", "x", "y", "-1s", "nope", "a..b", []byte{0xff})
	f.Fuzz(func(t *testing.T, fn, id, intent, typ, timeout, deadline, reply string, body []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{HeaderFunctionID: fn, HeaderJobID: id, HeaderFnIntent: intent, HeaderFnInvokeType: typ, HeaderTimeout: timeout, HeaderDeadline: deadline, HeaderReplyTo: reply} {
			if v != "" {
				h.Set(k, v)
			}
		}
		j, err := Parse(Message{Header: h, Data: body, Stream: "INVOKE_JOBS", Seq: 1}, Limits{MaxBody: 1024})
		if verr := ValidateJobID(j.ID); verr != nil {
			t.Fatalf("unsafe job id %q (parse err %v): %v", j.ID, err, verr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}

// TestParseReadsEveryHeaderInAnyCase: headers of equal length must not
// shadow each other, and an exact name wins over another casing.
func TestParseReadsEveryHeaderInAnyCase(t *testing.T) {
	t.Parallel()
	h := nats.Header{
		"invoke-function-id": {"ocid1.fnfunc.oc1.phx.aaaa"},
		"Nats-Msg-Id":        {"m1"},
		"TRACEPARENT":        {"00-abc-def-01"},
		"fn-invoke-type":     {"detached"},
		"Opc-Request-Id":     {"req-1"},
		"invoke-timeout":     {"5s"},
		"Invoke-Deadline":    {"2030-01-01T00:00:00Z"},
		"invoke-reply-to":    {"replies.x"},
		"Content-Type":       {"text/plain"},
		"content-type":       {"ignored/other-case"},
	}
	j, err := Parse(Message{Header: h, Stream: "S", Seq: 1}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "m1" || j.Traceparent != "00-abc-def-01" || j.InvokeType != "detached" || j.OpcRequestID != "req-1" ||
		j.Timeout != 5*time.Second || j.Deadline.IsZero() || j.ReplyTo != "replies.x" || j.ContentType != "text/plain" {
		t.Fatalf("%+v", j)
	}
}
