package invoke_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
)

const testFunction = "ocid1.fnfunc.oc1.phx.aaaaaaaatest"

// startBehaving runs an unsigned emulator whose every function behaves as
// spec; signing plays no part in these tests.
func startBehaving(t *testing.T, spec string) *emulator.Emulator {
	t.Helper()
	b, err := emulator.ParseBehavior(spec)
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(emulator.Config{Default: b, RecordCalls: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = emu.Close(ctx)
	})
	return emu
}

// newClient builds a client of the emulator at url.
func newClient(t *testing.T, url string, cfg invoke.Config) *invoke.Client {
	t.Helper()
	cfg.Resolver = invoke.StaticEndpoints{testFunction: url}
	c, err := invoke.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// invokeErr makes one call that must fail and returns its *invoke.Error.
func invokeErr(t *testing.T, c *invoke.Client, r invoke.Request) *invoke.Error {
	t.Helper()
	r.FunctionID = testFunction
	resp, err := c.Invoke(context.Background(), r)
	if err == nil {
		t.Fatalf("answered %d with %d bytes, want a failure", resp.Status, len(resp.Body))
	}
	var ie *invoke.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %T %v, want *invoke.Error", err, err)
	}
	return ie
}

// TestReadTimeoutIsBetweenReadsNotTheWholeAnswer: a body that keeps
// arriving, each piece well within the read timeout, is read whole although
// the answer as a whole takes longer than the read timeout.
func TestReadTimeoutIsBetweenReadsNotTheWholeAnswer(t *testing.T) {
	t.Parallel()
	const size = 15 * emulator.TrickleChunk // 15 waits of 100ms: 1.5s in all
	emu := startBehaving(t, "size=15360,trickle=100ms")
	c := newClient(t, emu.URL(), invoke.Config{ReadTimeout: time.Second})
	resp, err := c.Invoke(context.Background(), invoke.Request{FunctionID: testFunction, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || !bytes.Equal(resp.Body, emulator.SizedBody(size)) {
		t.Fatalf("status %d, %d bytes", resp.Status, len(resp.Body))
	}
	if resp.Duration <= time.Second {
		t.Fatalf("the answer took %s: the test needs it to outlast the read timeout", resp.Duration)
	}
}

// TestBodyStallIsATimeoutWithTheStatus: a function that answered 200 and
// then stopped sending fails as a timeout that keeps the status, so the
// record says the function answered; it is retried like any timeout.
func TestBodyStallIsATimeoutWithTheStatus(t *testing.T) {
	t.Parallel()
	emu := startBehaving(t, "size=10,trickle=1h")
	c := newClient(t, emu.URL(), invoke.Config{ReadTimeout: 200 * time.Millisecond})
	ie := invokeErr(t, c, invoke.Request{Body: []byte("x")})
	if !errors.Is(ie, invoke.ErrTimeout) || ie.Status != 200 {
		t.Fatalf("got %v (status %d), want ErrTimeout with status 200", ie, ie.Status)
	}
	if !strings.Contains(ie.Error(), "200") {
		t.Fatalf("error %q does not say the function answered 200", ie)
	}
	policy, err := invoke.NewRetryPolicy(invoke.RetryOnDefault(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !policy.Retryable(ie) || !ie.Unhealthy() {
		t.Fatalf("a stalled body: retryable %v, unhealthy %v; want both", policy.Retryable(ie), ie.Unhealthy())
	}
}

// TestReadTimeoutBoundsTheWaitForTheAnswer: no headers within the read
// timeout is a timeout with no status; a request's own Timeout shortens
// the read timeout and cannot lengthen it.
func TestReadTimeoutBoundsTheWaitForTheAnswer(t *testing.T) {
	t.Parallel()
	emu := startBehaving(t, "latency=1h")
	cases := []struct {
		name      string
		read, job time.Duration
	}{
		{"read timeout", 200 * time.Millisecond, 0},
		{"job's timeout shorter", time.Hour, 200 * time.Millisecond},
		{"job's timeout capped", 200 * time.Millisecond, time.Hour},
	}
	for _, tc := range cases {
		c := newClient(t, emu.URL(), invoke.Config{ReadTimeout: tc.read})
		ie := invokeErr(t, c, invoke.Request{Body: []byte("x"), Timeout: tc.job})
		if !errors.Is(ie, invoke.ErrTimeout) || ie.Status != 0 {
			t.Fatalf("%s: got %v (status %d), want ErrTimeout without a status", tc.name, ie, ie.Status)
		}
	}
}

// TestTotalTimeoutCapsTheAttempt: TotalTimeout ends an answer that keeps
// trickling in, keeping its status.
func TestTotalTimeoutCapsTheAttempt(t *testing.T) {
	t.Parallel()
	emu := startBehaving(t, "size=102400,trickle=50ms") // 100 waits: 5s
	c := newClient(t, emu.URL(), invoke.Config{ReadTimeout: time.Hour, TotalTimeout: 300 * time.Millisecond})
	ie := invokeErr(t, c, invoke.Request{Body: []byte("x")})
	if !errors.Is(ie, invoke.ErrTimeout) || ie.Status != 200 || !strings.Contains(ie.Error(), "total") {
		t.Fatalf("got %v (status %d), want a total timeout with status 200", ie, ie.Status)
	}
}

// slowHandshake delays every accepted connection's first read until delay
// passed or release is closed, which makes a TLS handshake slow:
// establishing the connection takes that long.
type slowHandshake struct {
	net.Listener
	delay   time.Duration
	release <-chan struct{}
}

func (l slowHandshake) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, l: l}, nil
}

type slowConn struct {
	net.Conn
	l       slowHandshake
	delayed bool
}

func (c *slowConn) Read(p []byte) (int, error) {
	if !c.delayed {
		c.delayed = true
		t := time.NewTimer(c.l.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.l.release:
		}
	}
	return c.Conn.Read(p)
}

// startTLS serves emu over TLS with every handshake delayed by delay; it
// returns the URL and a transport that trusts the server.
func startTLS(t *testing.T, emu *emulator.Emulator, delay, connect time.Duration) (string, *http.Transport) {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(emu.Handler())
	srv.Listener = slowHandshake{srv.Listener, delay, release}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut off on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // first: Close waits for handshakes
	tr := invoke.NewTransport(connect, 4)
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	return srv.URL, tr
}

// TestConnectTimeoutIsNotPartOfTheReadTimeout: establishing the connection
// (here a slow TLS handshake) is bounded by the connect timeout alone, and
// a slow one fails as a timeout with no status.
func TestConnectTimeoutIsNotPartOfTheReadTimeout(t *testing.T) {
	t.Parallel()
	emu := startBehaving(t, "echo")
	url, tr := startTLS(t, emu, 500*time.Millisecond, 5*time.Second)
	c := newClient(t, url, invoke.Config{ReadTimeout: 200 * time.Millisecond, ConnectTimeout: 5 * time.Second, Transport: tr})
	resp, err := c.Invoke(context.Background(), invoke.Request{FunctionID: testFunction, Body: []byte("hello")})
	if err != nil {
		t.Fatalf("a handshake slower than the read timeout failed the call: %v", err)
	}
	if string(resp.Body) != "hello" {
		t.Fatalf("body %q", resp.Body)
	}

	url, tr = startTLS(t, emu, time.Hour, 200*time.Millisecond)
	c = newClient(t, url, invoke.Config{ReadTimeout: time.Hour, ConnectTimeout: 200 * time.Millisecond, Transport: tr})
	ie := invokeErr(t, c, invoke.Request{Body: []byte("x")})
	if !errors.Is(ie, invoke.ErrTimeout) || ie.Status != 0 {
		t.Fatalf("got %v (status %d), want ErrTimeout without a status", ie, ie.Status)
	}
}

// TestResponseOverTheLimitKeepsTheStatus: an answer over ResponseLimit,
// announced or not, is ErrResponseTooLarge with the status the function
// answered, and the error names the limit.
func TestResponseOverTheLimitKeepsTheStatus(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"size=2048", "size=2048,trickle=1ms"} {
		emu := startBehaving(t, spec)
		c := newClient(t, emu.URL(), invoke.Config{ResponseLimit: 1024})
		ie := invokeErr(t, c, invoke.Request{Body: []byte("x")})
		if !errors.Is(ie, invoke.ErrResponseTooLarge) || ie.Status != 200 {
			t.Fatalf("%s: got %v (status %d), want ErrResponseTooLarge with status 200", spec, ie, ie.Status)
		}
		if msg := ie.Error(); !strings.Contains(msg, "invoke.response_limit") || !strings.Contains(msg, "1024") {
			t.Fatalf("%s: error %q does not name the limit and its value", spec, msg)
		}
		if ie.OpcRequestID == "" {
			t.Fatalf("%s: no opc-request-id", spec)
		}
	}
}

// TestCompressedAnswerIsPassedOnByteForByte: a function that gzips its
// answer on purpose gets exactly those bytes passed on, with their
// Content-Encoding; the client never asks for compression itself.
func TestCompressedAnswerIsPassedOnByteForByte(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte("compress me "), 100)
	for _, spec := range []string{"gzip", "gzip,trickle=1ms"} {
		emu := startBehaving(t, spec)
		c := newClient(t, emu.URL(), invoke.Config{})
		resp, err := c.Invoke(context.Background(), invoke.Request{FunctionID: testFunction, Body: payload})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ContentEncoding != "gzip" {
			t.Fatalf("%s: ContentEncoding %q, want gzip", spec, resp.ContentEncoding)
		}
		zr, err := gzip.NewReader(bytes.NewReader(resp.Body))
		if err != nil {
			t.Fatalf("%s: the body is not the gzip stream the function sent (%d bytes): %v", spec, len(resp.Body), err)
		}
		if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, payload) {
			t.Fatalf("%s: gunzipped body differs: %v", spec, err)
		}
		for _, call := range emu.Calls(testFunction) {
			if ae := call.Headers.Values("Accept-Encoding"); len(ae) != 0 {
				t.Fatalf("%s: the client asked for Accept-Encoding %q on its own", spec, ae)
			}
		}
	}
}
