package emulator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseBehaviorRoundTrip(t *testing.T) {
	cases := []struct {
		spec string
		want Behavior
	}{
		{"", Behavior{}},
		{"echo", Behavior{}},
		{" echo , ", Behavior{}},
		{"status=404", Behavior{Status: 404}},
		{"status=201,size=10", Behavior{Status: 201, ResponseSize: 10}},
		{"latency=200ms", Behavior{Latency: 200 * time.Millisecond}},
		{"fail=2,fail_status=503", Behavior{FailFirst: 2, FailStatus: 503}},
		{"fail_ratio=0.3,code=LockConflict,message=try again later", Behavior{FailRatio: 0.3, Code: "LockConflict", Message: "try again later"}},
		{"retry_after=2s,fail=1", Behavior{RetryAfter: 2 * time.Second, FailFirst: 1}},
		{"hang", Behavior{Hang: true}},
		{"drop,fail=3", Behavior{Drop: true, FailFirst: 3}},
		{"size=1024", Behavior{ResponseSize: 1024}},
		{"echo,latency=1m30s,fail=1", Behavior{Latency: 90 * time.Second, FailFirst: 1}},
		{"trickle=100ms", Behavior{Trickle: 100 * time.Millisecond}},
		{"gzip,size=10", Behavior{Gzip: true, ResponseSize: 10}},
		{"status=200,gzip,trickle=1s", Behavior{Status: 200, Gzip: true, Trickle: time.Second}},
	}
	for _, c := range cases {
		got, err := ParseBehavior(c.spec)
		if err != nil {
			t.Fatalf("ParseBehavior(%q): %v", c.spec, err)
		}
		if got != c.want {
			t.Fatalf("ParseBehavior(%q) = %+v, want %+v", c.spec, got, c.want)
		}
		again, err := ParseBehavior(got.String())
		if err != nil || again != got {
			t.Fatalf("round trip of %q via %q = %+v, %v", c.spec, got.String(), again, err)
		}
	}
	if s := (Behavior{}).String(); s != "echo" {
		t.Fatalf("zero Behavior String = %q, want echo", s)
	}
}

func TestParseBehaviorErrors(t *testing.T) {
	cases := map[string]string{
		"status=abc":               "status=abc",
		"status=42":                "status 42",
		"bogus":                    "bogus",
		"latency=fast":             "latency=fast",
		"latency=-1s":              "latency",
		"fail=-1":                  "fail",
		"fail_ratio=1.5":           "fail_ratio",
		"fail_ratio=NaN":           "fail_ratio",
		"fail_status=200":          "fail_status",
		"hang,drop":                "hang and drop",
		"hang=yes":                 "hang=yes",
		"echo,status=500":          "echo",
		"status=500,size=1":        "size",
		"code=":                    "code=",
		"fail=1,fail=2":            "given twice",
		"message":                  "message",
		"retry_after=2":            "retry_after=2",
		"size=-3":                  "size",
		"code=Bad Code,status=500": "code",
		"trickle=-1s":              "trickle",
		"trickle=1s,status=503":    "trickle and gzip",
		"gzip,status=404":          "trickle and gzip",
		"gzip=yes":                 "gzip=yes",
	}
	for spec, want := range cases {
		_, err := ParseBehavior(spec)
		if err == nil {
			t.Fatalf("ParseBehavior(%q): no error", spec)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseBehavior(%q) error %q does not name %q", spec, err, want)
		}
	}
}

func TestBehaviorValidateText(t *testing.T) {
	for _, b := range []Behavior{{Message: "a,b"}, {Message: " x"}, {Code: "a\nb"}} {
		if b.Validate() == nil {
			t.Fatalf("Validate(%+v) accepted", b)
		}
	}
}

func TestBehaviorJSONText(t *testing.T) {
	in := map[string]Behavior{"f": {FailFirst: 2, FailStatus: 429, RetryAfter: time.Second}}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":"echo,fail=2,fail_status=429,retry_after=1s"}`; string(raw) != want {
		t.Fatalf("json = %s, want %s", raw, want)
	}
	var out map[string]Behavior
	if err := json.Unmarshal(raw, &out); err != nil || out["f"] != in["f"] {
		t.Fatalf("unmarshal = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"f":"nope"}`), &out); err == nil {
		t.Fatal("bad spec accepted from JSON")
	}
}

func TestDefaultCode(t *testing.T) {
	want := map[int]string{
		400: "InvalidParameter", 401: "NotAuthenticated", 404: "NotAuthorizedOrNotFound",
		409: "IncorrectState", 413: "FunctionInvokeRequestContentTooLarge", 429: "TooManyRequests",
		500: "InternalServerError", 501: "MethodNotImplemented", 502: "FunctionInvokeExecutionFailed",
		503: "FunctionInvokeServiceUnavailable", 504: "FunctionInvokeTimeout", 418: "Error",
	}
	for status, code := range want {
		if got := DefaultCode(status); got != code {
			t.Errorf("DefaultCode(%d) = %q, want %q", status, got, code)
		}
	}
}

func TestSizedBody(t *testing.T) {
	if got := string(SizedBody(30)); got != "abcdefghijklmnopqrstuvwxyzabcd" {
		t.Fatalf("SizedBody(30) = %q", got)
	}
	if len(SizedBody(0)) != 0 || len(SizedBody(-1)) != 0 {
		t.Fatal("SizedBody of n<=0 not empty")
	}
}
