package invoke_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
)

// TestRequestThatCannotBeBuiltIsTheCallersFault: a header HTTP cannot
// carry fails with ErrBadRequest before anything is sent; it is not a
// network error, no retry rule retries it, and it does not say the
// function is unhealthy (so a breaker does not count it). The value is not
// echoed: a header may hold a secret.
func TestRequestThatCannotBeBuiltIsTheCallersFault(t *testing.T) {
	t.Parallel()
	const fn = "ocid1.fnfunc.oc1.phx.aaaabad"
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, nil)
	client, err := invoke.New(invoke.Config{Resolver: invoke.StaticEndpoints{fn: emu.URL()}, Signer: testenv.Signer(t, creds)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	// Every rule a configuration can name, on and never empty: not even
	// "network" may retry it.
	greedy, err := invoke.NewRetryPolicy(append([]string{"*/InvalidParameter", "400"}, invoke.RetryOnDefault()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]invoke.Request{
		"opc-request-id NUL":   {OpcRequestID: "secret\x00id"},
		"content-type newline": {ContentType: "text/plain\nsecret"},
		"intent DEL":           {Intent: "cloudevent\x7fsecret"},
		"invoke type CR":       {InvokeType: "sync\rsecret"},
		"traceparent US":       {Header: http.Header{"Traceparent": {"00-secret\x1f-01"}}},
		"header name space":    {Header: http.Header{"Trace Parent": {"secret"}}},
	} {
		r.FunctionID, r.Body = fn, []byte("x")
		resp, err := client.Invoke(context.Background(), r)
		var ie *invoke.Error
		switch {
		case resp != nil:
			t.Errorf("%s: answered %d", name, resp.Status)
		case !errors.As(err, &ie) || !errors.Is(err, invoke.ErrBadRequest):
			t.Errorf("%s: %v, want an *Error wrapping ErrBadRequest", name, err)
		case errors.Is(err, invoke.ErrNetwork) || ie.Status != 0:
			t.Errorf("%s: %v classed as a network failure or an answer", name, err)
		case ie.Unhealthy():
			t.Errorf("%s: Unhealthy, so a breaker would count it", name)
		case greedy.Retryable(err):
			t.Errorf("%s: retryable", name)
		case strings.Contains(err.Error(), "secret"):
			t.Errorf("%s: the error %q echoes the value", name, err)
		}
	}
	if n := emu.Stats().Requests; n != 0 {
		t.Fatalf("the emulator saw %d requests, want none", n)
	}
	// A tab and bytes from 0x80 up are field content: sent.
	resp, err := client.Invoke(context.Background(), invoke.Request{FunctionID: fn, Body: []byte("ok"), OpcRequestID: "a\tb", ContentType: "text/plain; name=\"é\""})
	if err != nil {
		t.Fatal(err)
	}
	resp.Release()
}
