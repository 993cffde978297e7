package job

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/internal/httpfield"
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

// FuzzParse: no input makes Parse panic, the job id it returns is always
// subject-safe (so a dead-letter subject can be built from it), and a job
// it accepts carries only values the worker can put on the wire.
func FuzzParse(f *testing.F) {
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "id-1", "httprequest", "sync", "30s", "2026-01-01T00:00:00Z", "reply.to", "text/plain", "req-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v", []byte("body"))
	f.Add("", "a.b", "x", "y", "-1s", "nope", "a..b", "", "", "", "", []byte{0xff})
	// Control characters, where HTTP cannot carry them.
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "id-2", "", "", "", "", "", "text/plain\x00", "", "", "", []byte("x"))
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "id-3", "", "", "", "", "", "", "req\x01id", "", "", []byte("x"))
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "id-4", "", "", "", "", "", "", "", "00-abc\x7f-01", "a=\x1fb", []byte("x"))
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "", "cloud\x00event", "sync\r", "", "", "reply.\x00to", "a\rb", "a\nb", "\t00", "é\xff", []byte{})
	f.Add("ocid1.fnfunc.oc1.phx.aaaa", "bad id\x00", "", "", "", "", "", "", "", "", "", []byte("x"))
	f.Fuzz(func(t *testing.T, fn, id, intent, typ, timeout, deadline, reply, ct, opc, tp, ts string, body []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{
			HeaderFunctionID: fn, HeaderJobID: id, HeaderFnIntent: intent, HeaderFnInvokeType: typ, HeaderTimeout: timeout,
			HeaderDeadline: deadline, HeaderReplyTo: reply, HeaderContentType: ct, HeaderOpcRequestID: opc,
			HeaderTraceparent: tp, HeaderTracestate: ts,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		j, err := Parse(Message{Header: h, Data: body, Stream: "INVOKE_JOBS", Seq: 1}, Limits{MaxBody: 1024})
		if verr := ValidateJobID(j.ID); verr != nil {
			t.Fatalf("unsafe job id %q (parse err %v): %v", j.ID, err, verr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("error %q carries a control character", err)
			}
			return
		}
		for _, v := range []string{j.ContentType, j.OpcRequestID, j.Traceparent, j.Tracestate, j.Intent, j.InvokeType, j.FunctionID, j.ID} {
			if !httpfield.ValidValue(v) || len(v) > MaxTracestateLength {
				t.Fatalf("accepted a value the worker cannot send: %q", v)
			}
		}
		if j.ReplyTo != "" && ValidatePublishSubject(j.ReplyTo) != nil {
			t.Fatalf("accepted reply subject %q", j.ReplyTo)
		}
	})
}

// TestParseRefusesValuesTheWorkerCannotSend: a value passed on to the
// function (or onto the result) with a control character, or over its
// limit, makes the job invalid at once, with the header named and the value
// quoted safely.
func TestParseRefusesValuesTheWorkerCannotSend(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct {
		header, value string
		ok            bool
	}{
		{HeaderOpcRequestID, "req\x00id", false},
		{HeaderOpcRequestID, "req\x1fid", false},
		{HeaderOpcRequestID, "req\x7fid", false},
		{HeaderOpcRequestID, "req\rid", false},
		{HeaderOpcRequestID, "req\nid", false},
		{HeaderOpcRequestID, "req\tid", true}, // tab is allowed
		{HeaderOpcRequestID, long(MaxOpcRequestIDLength), true},
		{HeaderOpcRequestID, long(MaxOpcRequestIDLength + 1), false},
		{HeaderContentType, "text/plain; charset=utf-8\x00", false},
		{HeaderContentType, "text/plain; name=\"é\xff\"", true}, // obs-text: HTTP carries it
		{HeaderContentType, long(MaxContentTypeLength + 1), false},
		{HeaderTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x01", false},
		{HeaderTraceparent, long(MaxTraceparentLength + 1), false},
		{"TRACEPARENT", "00-\x02", false}, // in any case
		{HeaderTracestate, "vendor=\x00", false},
		{HeaderTracestate, long(MaxTracestateLength), true},
		{HeaderTracestate, long(MaxTracestateLength + 1), false},
		{HeaderFnIntent, "cloudevent\x00", false},
		{HeaderFnInvokeType, "sync\x00", false},
		{HeaderReplyTo, "replies.\x00x", false},
		{HeaderReplyTo, "replies." + long(MaxSubjectLength), false},
		{HeaderFunctionID, "ocid1.fnfunc.oc1." + long(MaxFunctionIDLength) + ".aaaa", false},
	} {
		h := nats.Header{HeaderFunctionID: {"ocid1.fnfunc.oc1.phx.aaaa"}, HeaderJobID: {"j1"}}
		h[c.header] = []string{c.value}
		j, err := Parse(Message{Header: h, Stream: "S", Seq: 1}, Limits{})
		if c.ok {
			if err != nil {
				t.Errorf("%s %q: %v", c.header, truncate(c.value, 40), err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %q: err %v, want invalid", c.header, truncate(c.value, 40), err)
			continue
		}
		msg := err.Error()
		name := c.header
		if strings.EqualFold(name, HeaderTraceparent) {
			name = HeaderTraceparent
		}
		if !strings.Contains(msg, name) {
			t.Errorf("%s: error %q does not name the header", c.header, msg)
		}
		if strings.ContainsFunc(msg, func(r rune) bool { return r < ' ' || r == 0x7f }) || len(msg) > 400 {
			t.Errorf("%s: error %q is not one short, escaped line", c.header, msg)
		}
		if j.ID != "j1" {
			t.Errorf("%s: job id %q, want j1", c.header, j.ID)
		}
	}
}

// TestBadJobIDIsQuotedAndKept: the error quotes the publisher's value (cut
// and escaped), and the job keeps it for the dead-letter record.
func TestBadJobIDIsQuotedAndKept(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ id, quoted string }{
		{"order 42", `"order 42"`},
		{"a\x00b", `"a\x00b"`},
		{strings.Repeat("x", 200), `"` + strings.Repeat("x", 64) + `…"`},
	} {
		h := nats.Header{HeaderFunctionID: {"ocid1.fnfunc.oc1.phx.aaaa"}, "invoke-job-id": {c.id}}
		j, err := Parse(Message{Header: h, Stream: "INVOKE_JOBS", Seq: 9}, Limits{})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: err %v", c.id, err)
		}
		if !strings.Contains(err.Error(), HeaderJobID+" "+c.quoted) {
			t.Errorf("error %q does not quote %s", err, c.quoted)
		}
		if j.ID != "INVOKE_JOBS-9" || j.RejectedID != c.id {
			t.Errorf("id %q, rejected %q; want the fallback and the value as sent", j.ID, j.RejectedID)
		}
	}
	j, err := Parse(Message{Header: nats.Header{HeaderFunctionID: {"ocid1.fnfunc.oc1.phx.aaaa"}, HeaderJobID: {"good"}}}, Limits{})
	if err != nil || j.RejectedID != "" {
		t.Fatalf("valid id: %v, rejected %q", err, j.RejectedID)
	}
}

// TestSpellingsOfOneHeaderAreReadTheSameEveryTime: without the exact name,
// which of several other spellings is read must not depend on map order,
// or one delivery of a job could be valid and the next invalid.
func TestSpellingsOfOneHeaderAreReadTheSameEveryTime(t *testing.T) {
	t.Parallel()
	h := nats.Header{
		HeaderFunctionID: {"ocid1.fnfunc.oc1.phx.aaaa"},
		"INVOKE-JOB-ID":  {"upper"},
		"invoke-job-id":  {"lower id"},
		"Invoke-job-id":  {"mixed"},
		"invoke-Job-Id":  {"other"},
	}
	for range 100 {
		j, err := Parse(Message{Header: h, Stream: "S", Seq: 1}, Limits{})
		if err != nil || j.ID != "upper" {
			t.Fatalf("id %q, err %v; want the spelling that sorts first (INVOKE-JOB-ID)", j.ID, err)
		}
		if got := Lookup(h, HeaderJobID); got != "upper" {
			t.Fatalf("Lookup gives %q", got)
		}
	}
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

func TestCopyCarriedLeavesJetStreamAndWaitHeadersBehind(t *testing.T) {
	src := nats.Header{
		"Nats-Msg-Id":          {"m1"},
		"nats-expected-stream": {"X"},
		"Invoke-Wait-Cause":    {"retry"},
		"invoke-wait-defers":   {"2"},
		"Invoke-Job-Id":        {"j1"},
		"X-Custom":             {"a", "b"},
	}
	dst := nats.Header{}
	CopyCarried(dst, src)
	want := nats.Header{"Invoke-Job-Id": {"j1"}, "X-Custom": {"a", "b"}}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("carried %v, want %v", dst, want)
	}
	dst["X-Custom"][0] = "changed"
	if src["X-Custom"][0] != "a" {
		t.Fatal("changing the copy changed the source")
	}
}
