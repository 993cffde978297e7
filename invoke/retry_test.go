package invoke_test

import (
	"fmt"
	"testing"

	"github.com/invoke-worker/worker/invoke"
)

func TestParseRetryRule(t *testing.T) {
	t.Parallel()
	for _, rule := range []string{"network", "timeout", "100", "429", "599", "409/IncorrectState", "*/TooManyRequests", "502/A.b-c_9"} {
		if err := invoke.ParseRetryRule(rule); err != nil {
			t.Errorf("%q: %v", rule, err)
		}
	}
	for _, rule := range []string{"", "NETWORK", " network", "timeout ", "sometimes", "0500", "+500", "5xx", "99", "600", "1000",
		"409/", "*", "*/", "/Code", "502/Bad Code", "502/Bad/Code", "502/Ünicode"} {
		if err := invoke.ParseRetryRule(rule); err == nil {
			t.Errorf("%q: accepted", rule)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	timeout := &invoke.Error{Err: fmt.Errorf("%w after 1s", invoke.ErrTimeout)}
	network := &invoke.Error{Err: fmt.Errorf("%w: connection refused", invoke.ErrNetwork)}
	lock := &invoke.Error{Status: 409, Code: "LockConflict"}
	conflict := &invoke.Error{Status: 409, Code: "Conflict"}
	tests := []struct {
		name      string
		on, never []string
		err       error
		want      bool
	}{
		{"default retries a timeout", invoke.RetryOnDefault(), nil, timeout, true},
		{"default retries a network error", invoke.RetryOnDefault(), nil, network, true},
		{"default retries 409 LockConflict", invoke.RetryOnDefault(), nil, lock, true},
		{"default does not retry another 409", invoke.RetryOnDefault(), nil, conflict, false},
		{"default does not retry 404", invoke.RetryOnDefault(), nil, &invoke.Error{Status: 404}, false},
		{"codes match in any case", []string{"*/lockconflict"}, nil, lock, true},
		{"never wins over on", invoke.RetryOnDefault(), []string{"timeout"}, timeout, false},
		{"not an invoke error", invoke.RetryOnDefault(), nil, fmt.Errorf("canceled"), false},
	}
	for _, tt := range tests {
		p, err := invoke.NewRetryPolicy(tt.on, tt.never)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Retryable(tt.err); got != tt.want {
			t.Errorf("%s: Retryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRetryOnDefaultIsFresh(t *testing.T) {
	t.Parallel()
	a := invoke.RetryOnDefault()
	a[0] = "changed"
	if invoke.RetryOnDefault()[0] == "changed" {
		t.Fatal("RetryOnDefault shares its slice between calls")
	}
}
