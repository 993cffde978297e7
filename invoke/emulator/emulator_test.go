package emulator_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/invoke-worker/worker/invoke/emulator"
)

func TestSignedEchoIsByteExact(t *testing.T) {
	e := start(t, signedConfig(t))
	c := client(t, 5*time.Second)

	binary := make([]byte, 64*1024)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	cases := []struct {
		name, contentType string
		body              []byte
	}{
		{"binary", "application/octet-stream", binary},
		{"json", "application/json", []byte(`{"hello":"world"}`)},
		{"empty", "text/plain", nil},
	}
	for _, tc := range cases {
		req := newInvoke(t, context.Background(), invokeURL(e, testFn), tc.body, tc.contentType)
		req.Header.Set("opc-request-id", "req-"+tc.name) // unsigned header, echoed back
		r := do(t, c, sign(t, req, mainKey(t)))
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d body %q", tc.name, r.status, r.body)
		}
		if !bytes.Equal(r.body, tc.body) {
			t.Fatalf("%s: echo differs (%d bytes, want %d)", tc.name, len(r.body), len(tc.body))
		}
		if got := r.header.Get("Content-Type"); got != tc.contentType {
			t.Fatalf("%s: Content-Type %q, want %q", tc.name, got, tc.contentType)
		}
		if got := r.header.Get("opc-request-id"); got != "req-"+tc.name {
			t.Fatalf("%s: opc-request-id %q", tc.name, got)
		}
		if r.header.Get("Fn-Call-Id") == "" {
			t.Fatalf("%s: no Fn-Call-Id", tc.name)
		}
	}

	calls := e.Calls(testFn)
	if len(calls) != len(cases) {
		t.Fatalf("recorded %d calls, want %d", len(calls), len(cases))
	}
	for i, call := range calls {
		if !call.Signed || call.Status != 200 || call.BodyLen != len(cases[i].body) ||
			call.RequestID != "req-"+cases[i].name || call.FunctionID != testFn ||
			call.End.Before(call.Start) || call.Headers.Get("X-Content-Sha256") == "" {
			t.Fatalf("call %d recorded as %+v", i, call)
		}
	}
	// Recorded headers are copies.
	calls[0].Headers.Set("X-Content-Sha256", "changed")
	if e.Calls(testFn)[0].Headers.Get("X-Content-Sha256") == "changed" {
		t.Fatal("Calls returned shared headers")
	}
}

func TestSignatureRejections(t *testing.T) {
	e := start(t, signedConfig(t))
	c := client(t, 5*time.Second)
	body := []byte("payload")

	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"unsigned", func() *http.Request {
			return newInvoke(t, context.Background(), invokeURL(e, testFn), body, "text/plain")
		}},
		{"wrong key", func() *http.Request {
			return sign(t, newInvoke(t, context.Background(), invokeURL(e, testFn), body, "text/plain"), otherKey(t))
		}},
		{"date 10 minutes old", func() *http.Request {
			req := newInvoke(t, context.Background(), invokeURL(e, testFn), body, "text/plain")
			req.Header.Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
			return sign(t, req, mainKey(t))
		}},
		{"body tampered after signing", func() *http.Request {
			req := signedInvoke(t, e, testFn, body)
			req.Body = io.NopCloser(strings.NewReader("PAYLOAD")) // same length
			return req
		}},
		{"signed header changed", func() *http.Request {
			req := signedInvoke(t, e, testFn, body)
			req.Header.Set("Content-Type", "text/html")
			return req
		}},
		{"garbage authorization", func() *http.Request {
			req := signedInvoke(t, e, testFn, body)
			req.Header.Set("Authorization", "Signature nonsense")
			return req
		}},
	}
	for i, tc := range cases {
		req := tc.req()
		sig := req.Header.Get("Authorization")
		r := do(t, c, req)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, body %q", tc.name, r.status, r.body)
		}
		code, msg := ociErr(t, r)
		if code != "NotAuthenticated" || msg == "" {
			t.Fatalf("%s: error %q %q", tc.name, code, msg)
		}
		if i := strings.Index(sig, `signature="`); i >= 0 && strings.Contains(msg, sig[i+11:i+30]) {
			t.Fatalf("%s: message echoes the signature: %q", tc.name, msg)
		}
		if r.header.Get("opc-request-id") == "" || r.header.Get("Fn-Call-Id") != "" {
			t.Fatalf("%s: headers %v", tc.name, r.header)
		}
		if got := e.Stats().RejectedSignatures; got != int64(i+1) {
			t.Fatalf("%s: RejectedSignatures = %d", tc.name, got)
		}
	}
	if s := e.Stats(); s.Calls != 0 || s.Requests != int64(len(cases)) {
		t.Fatalf("rejected requests reached functions: %+v", s)
	}
}

// TestContentLengthMismatch needs a Content-Length header that disagrees
// with the body, which an http.Client cannot send, so it drives the handler.
func TestContentLengthMismatch(t *testing.T) {
	e, err := emulator.New(signedConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	signed := sign(t, newInvoke(t, context.Background(), "http://emulator.test/20181201/functions/"+testFn+"/actions/invoke", []byte("hello"), "text/plain"), mainKey(t))
	req := httptest.NewRequest(http.MethodPost, signed.URL.String(), strings.NewReader("hello"))
	req.Header = signed.Header.Clone()
	req.Header.Set("Content-Length", "6")

	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	r := result{rec.Code, rec.Header(), rec.Body.Bytes()}
	code, msg := ociErr(t, r)
	if r.status != http.StatusUnauthorized || code != "NotAuthenticated" || !strings.Contains(msg, "content-length") {
		t.Fatalf("got %d %s %q", r.status, code, msg)
	}

	// The untouched request passes through the same handler.
	req = httptest.NewRequest(http.MethodPost, signed.URL.String(), strings.NewReader("hello"))
	req.Header = signed.Header.Clone()
	rec = httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != "hello" {
		t.Fatalf("control request: %d %q", rec.Code, rec.Body.String())
	}
}

func TestWrongKeyID(t *testing.T) {
	cfg := signedConfig(t)
	cfg.KeyID = "ocid1.tenancy.oc1..other/ocid1.user.oc1..other/00:00"
	e := start(t, cfg)
	r := do(t, client(t, 5*time.Second), signedInvoke(t, e, testFn, []byte("x")))
	if code, _ := ociErr(t, r); r.status != 401 || code != "NotAuthenticated" {
		t.Fatalf("got %d %s", r.status, code)
	}
}

func TestBehaviors(t *testing.T) {
	e := start(t, emulator.Config{})
	c := client(t, 5*time.Second)
	post := func(fn, spec string, hdr ...string) result {
		t.Helper()
		req := newInvoke(t, context.Background(), invokeURL(e, fn), []byte("ping"), "text/plain")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return do(t, c, req)
	}
	set := func(fn, spec string) {
		t.Helper()
		b, err := emulator.ParseBehavior(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetBehavior(fn, b); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("status", func(t *testing.T) {
		set("st404", "status=404")
		r := post("st404", "")
		if code, _ := ociErr(t, r); r.status != 404 || code != "NotAuthorizedOrNotFound" || r.header.Get("Fn-Call-Id") == "" {
			t.Fatalf("got %d %s", r.status, code)
		}
		set("st201", "status=201")
		if r := post("st201", ""); r.status != 201 || len(r.body) != 0 {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		set("code", "status=409,code=LockConflict,message=busy elsewhere")
		r = post("code", "")
		if code, msg := ociErr(t, r); r.status != 409 || code != "LockConflict" || msg != "busy elsewhere" {
			t.Fatalf("got %d %s %q", r.status, code, msg)
		}
	})

	t.Run("latency", func(t *testing.T) {
		set("slow", "latency=150ms")
		begin := time.Now()
		r := post("slow", "")
		if d := time.Since(begin); d < 150*time.Millisecond || r.status != 200 || string(r.body) != "ping" {
			t.Fatalf("got %d %q after %s", r.status, r.body, d)
		}
	})

	t.Run("fail first then succeed", func(t *testing.T) {
		set("flaky", "fail=2,fail_status=503,retry_after=1500ms")
		for i := 0; i < 2; i++ {
			r := post("flaky", "")
			code, _ := ociErr(t, r)
			if r.status != 503 || code != "FunctionInvokeServiceUnavailable" || r.header.Get("Retry-After") != "2" {
				t.Fatalf("call %d: %d %s Retry-After=%q", i, r.status, code, r.header.Get("Retry-After"))
			}
		}
		if r := post("flaky", ""); r.status != 200 || string(r.body) != "ping" || r.header.Get("Retry-After") != "" {
			t.Fatalf("third call: %d %q", r.status, r.body)
		}
		// Setting the behaviour again restarts the count.
		set("flaky", "fail=1,fail_status=429")
		if r := post("flaky", ""); r.status != 429 {
			t.Fatalf("after SetBehavior: %d", r.status)
		}
		st := e.Stats().Functions["flaky"]
		if st.Calls != 4 || st.Statuses[503] != 2 || st.Statuses[200] != 1 || st.Statuses[429] != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("size", func(t *testing.T) {
		for _, n := range []int{1, 1000, 100_000} {
			set("big", "size="+strconv.Itoa(n))
			r := post("big", "")
			if r.status != 200 || !bytes.Equal(r.body, emulator.SizedBody(n)) {
				t.Fatalf("size %d: status %d, %d bytes", n, r.status, len(r.body))
			}
		}
	})

	t.Run("detached", func(t *testing.T) {
		r := post("detached", "", "fn-invoke-type", "detached")
		if r.status != 202 || len(r.body) != 0 {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		if r := post("detached", "", "fn-invoke-type", "sync"); r.status != 200 {
			t.Fatalf("sync: %d", r.status)
		}
	})

	t.Run("drop", func(t *testing.T) {
		set("dropper", "drop,fail=1")
		req := newInvoke(t, context.Background(), invokeURL(e, "dropper"), []byte("ping"), "text/plain")
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("dropped call answered %d", resp.StatusCode)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if r := post("dropper", ""); r.status != 200 {
			t.Fatalf("second call: %d", r.status)
		}
		if st := e.Stats().Functions["dropper"]; st.Dropped != 1 || st.Statuses[200] != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("gzip", func(t *testing.T) {
		set("zipper", "gzip")
		tr := &http.Transport{DisableCompression: true} // see the bytes as sent
		t.Cleanup(tr.CloseIdleConnections)
		req := newInvoke(t, context.Background(), invokeURL(e, "zipper"), []byte("ping"), "text/plain")
		r := do(t, &http.Client{Transport: tr}, req)
		if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
			t.Fatalf("got %d %v", r.status, r.header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := io.ReadAll(zr); err != nil || string(plain) != "ping" {
			t.Fatalf("gunzipped %q, %v", plain, err)
		}
	})

	t.Run("trickle", func(t *testing.T) {
		set("trickler", "size=3000,trickle=10ms")
		req := newInvoke(t, context.Background(), invokeURL(e, "trickler"), []byte("ping"), "text/plain")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// Headers arrive before the body: it is chunked, of unknown length.
		if resp.StatusCode != 200 || resp.ContentLength != -1 {
			t.Fatalf("got %d, length %d", resp.StatusCode, resp.ContentLength)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(body, emulator.SizedBody(3000)) {
			t.Fatalf("body %d bytes, %v", len(body), err)
		}
		if st := e.Stats().Functions["trickler"]; st.Statuses[200] != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("trickle cut off is not a whole body", func(t *testing.T) {
		set("stall", "trickle=1h")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := c.Do(newInvoke(t, ctx, invokeURL(e, "stall"), []byte("ping"), "text/plain"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		cancel()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("a cut-off body read as complete")
		}
		waitFor(t, "trickle abandoned", func() bool {
			st := e.Stats().Functions["stall"]
			return st.Abandoned == 1 && st.InFlight == 0
		})
	})

	t.Run("hang released by client timeout", func(t *testing.T) {
		set("stuck", "hang")
		req := newInvoke(t, context.Background(), invokeURL(e, "stuck"), []byte("ping"), "text/plain")
		begin := time.Now()
		if _, err := client(t, 100*time.Millisecond).Do(req); err == nil {
			t.Fatal("hanging call answered")
		}
		if d := time.Since(begin); d > 2*time.Second {
			t.Fatalf("client waited %s", d)
		}
		waitFor(t, "hang abandoned", func() bool {
			st := e.Stats().Functions["stuck"]
			return st.Abandoned == 1 && st.InFlight == 0
		})
	})
}

func TestFailRatioIsSeeded(t *testing.T) {
	outcomes := func(seed uint64) string {
		e := start(t, emulator.Config{Seed: seed, Default: emulator.Behavior{FailRatio: 0.5, FailStatus: 502}})
		c := client(t, 5*time.Second)
		var sb strings.Builder
		for i := 0; i < 40; i++ {
			r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("x"), ""))
			switch r.status {
			case 200:
				sb.WriteByte('.')
			case 502:
				if code, _ := ociErr(t, r); code != "FunctionInvokeExecutionFailed" {
					t.Fatalf("code %s", code)
				}
				sb.WriteByte('F')
			default:
				t.Fatalf("status %d", r.status)
			}
		}
		return sb.String()
	}
	a, b := outcomes(42), outcomes(42)
	if a != b {
		t.Fatalf("same seed, different outcomes:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "F") || !strings.Contains(a, ".") {
		t.Fatalf("ratio 0.5 gave %s", a)
	}
	if c := outcomes(7); c == a {
		t.Fatalf("different seeds gave the same 40 outcomes %s", c)
	}
}

func TestRequestTooLarge(t *testing.T) {
	t.Run("network, small limit", func(t *testing.T) {
		e := start(t, emulator.Config{MaxRequestBytes: 1024})
		c := client(t, 5*time.Second)
		r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), make([]byte, 1025), ""))
		if code, _ := ociErr(t, r); r.status != 413 || code != "FunctionInvokeRequestContentTooLarge" {
			t.Fatalf("declared length: %d %s", r.status, code)
		}
		// Unknown length (chunked) is cut off while reading.
		req := newInvoke(t, context.Background(), invokeURL(e, testFn), nil, "")
		req.Body = io.NopCloser(io.LimitReader(zeros{}, 2000))
		req.ContentLength = -1
		r = do(t, c, req)
		if r.status != 413 {
			t.Fatalf("chunked: %d", r.status)
		}
		if r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), make([]byte, 1024), "")); r.status != 200 || len(r.body) != 1024 {
			t.Fatalf("at the limit: %d", r.status)
		}
		if s := e.Stats(); s.RejectedTooLarge != 2 || s.Calls != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("default 6 MiB", func(t *testing.T) {
		e, err := emulator.New(emulator.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ n, want int }{{6 << 20, 200}, {6<<20 + 1, 413}} {
			rec := httptest.NewRecorder()
			e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/20181201/functions/f/actions/invoke", bytes.NewReader(make([]byte, tc.n))))
			if rec.Code != tc.want {
				t.Fatalf("%d bytes: %d, want %d", tc.n, rec.Code, tc.want)
			}
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestConcurrentStats(t *testing.T) {
	e := start(t, emulator.Config{Functions: map[string]emulator.Behavior{"a": {Hang: true}, "b": {Hang: true}}})
	c := client(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const perFn = 6
	var wg sync.WaitGroup
	for _, fn := range []string{"a", "b"} {
		for i := 0; i < perFn; i++ {
			wg.Go(func() {
				resp, err := c.Do(newInvoke(t, ctx, invokeURL(e, fn), []byte("x"), ""))
				if err == nil {
					resp.Body.Close()
					t.Errorf("hanging call answered %d", resp.StatusCode)
				}
			})
		}
	}
	waitFor(t, "all calls in flight", func() bool { return e.Stats().InFlight == 2*perFn })
	cancel()
	wg.Wait()
	waitFor(t, "all calls abandoned", func() bool { return e.Stats().InFlight == 0 })

	s := e.Stats()
	if s.MaxInFlight != 2*perFn || s.Calls != 2*perFn || s.Requests != 2*perFn {
		t.Fatalf("global stats %+v", s)
	}
	for _, fn := range []string{"a", "b"} {
		if f := s.Functions[fn]; f.MaxInFlight != perFn || f.Calls != perFn || f.Abandoned != perFn || f.Behavior != "echo,hang" {
			t.Fatalf("%s stats %+v", fn, f)
		}
	}

	// Many concurrent echoes: counters add up exactly.
	const n = 200
	for i := 0; i < n; i++ {
		wg.Go(func() {
			fn := "echo" + strconv.Itoa(i%4)
			resp, err := c.Post(invokeURL(e, fn), "text/plain", strings.NewReader(strconv.Itoa(i)))
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != strconv.Itoa(i) {
				t.Errorf("call %d: %d %q", i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	s = e.Stats()
	var sum int64
	for i := 0; i < 4; i++ {
		f := s.Functions["echo"+strconv.Itoa(i)]
		if f.Calls != n/4 || f.Statuses[200] != n/4 || f.InFlight != 0 {
			t.Fatalf("echo%d stats %+v", i, f)
		}
		sum += f.Calls
	}
	if s.Calls != 2*perFn+sum || s.InFlight != 0 || s.MaxInFlight < 2*perFn {
		t.Fatalf("global stats %+v", s)
	}
}

func TestAdminRoutes(t *testing.T) {
	e := start(t, emulator.Config{})
	c := client(t, 5*time.Second)
	admin := func(method, path, body string) result {
		t.Helper()
		req, err := http.NewRequest(method, e.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return do(t, c, req)
	}

	if r := admin("GET", "/healthz", ""); r.status != 200 || string(r.body) != "ok" || r.header.Get("opc-request-id") == "" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
	r := admin("PUT", "/emulator/functions/"+testFn, "fail=1,fail_status=500")
	if r.status != 200 || !strings.Contains(string(r.body), `"behavior":"echo,fail=1,fail_status=500"`) {
		t.Fatalf("PUT: %d %q", r.status, r.body)
	}
	if r := admin("GET", "/emulator/functions/"+testFn, ""); !strings.Contains(string(r.body), "fail=1") {
		t.Fatalf("GET behavior: %q", r.body)
	}
	r = admin("PUT", "/emulator/functions/"+testFn, "status=abc")
	if code, msg := ociErr(t, r); r.status != 400 || code != "InvalidParameter" || !strings.Contains(msg, "status=abc") {
		t.Fatalf("bad spec: %d %s %q", r.status, code, msg)
	}
	if e.BehaviorOf(testFn).FailFirst != 1 {
		t.Fatal("bad spec changed the behaviour")
	}

	if r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("a"), "")); r.status != 500 {
		t.Fatalf("first call after PUT: %d", r.status)
	}
	if r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("a"), "")); r.status != 200 {
		t.Fatalf("second call after PUT: %d", r.status)
	}

	var s emulator.Stats
	if err := json.Unmarshal(admin("GET", "/emulator/stats", "").body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Calls != 2 || s.Functions[testFn].Statuses[500] != 1 || s.Functions[testFn].Statuses[200] != 1 {
		t.Fatalf("stats %+v", s)
	}

	if r := admin("POST", "/emulator/reset", ""); r.status != 204 {
		t.Fatalf("reset: %d", r.status)
	}
	if s := e.Stats(); s.Calls != 0 || s.Requests != 0 || len(s.Functions[testFn].Statuses) != 0 {
		t.Fatalf("after reset %+v", s)
	}
	// Reset restarts FailFirst too.
	if r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("a"), "")); r.status != 500 {
		t.Fatalf("first call after reset: %d", r.status)
	}

	// Wrong methods and unknown routes are OCI-style JSON errors.
	r = admin("GET", "/20181201/functions/"+testFn+"/actions/invoke", "")
	if code, _ := ociErr(t, r); r.status != 405 || code != "MethodNotAllowed" || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET invoke: %d %s", r.status, code)
	}
	r = admin("POST", "/v1/functions/"+testFn+"/actions/invoke", "")
	if code, _ := ociErr(t, r); r.status != 404 || code != "NotAuthorizedOrNotFound" {
		t.Fatalf("bad api version: %d %s", r.status, code)
	}
	if r := admin("GET", "/nope", ""); r.status != 404 {
		t.Fatalf("unknown route: %d", r.status)
	}
	if r := admin("DELETE", "/emulator/stats", ""); r.status != 405 {
		t.Fatalf("DELETE stats: %d", r.status)
	}
}

func TestRecordedTimesUseConfigNow(t *testing.T) {
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := start(t, emulator.Config{RecordCalls: true, MaxRecordedCalls: 2, Now: func() time.Time { return fixed }})
	c := client(t, 5*time.Second)
	for i := 0; i < 3; i++ {
		do(t, c, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte(strconv.Itoa(i*100)), ""))
	}
	calls := e.Calls(testFn)
	if len(calls) != 2 || calls[0].BodyLen != 3 || calls[1].BodyLen != 3 || calls[0].Signed {
		t.Fatalf("calls %+v", calls)
	}
	if !calls[1].Start.Equal(fixed) || !calls[1].End.Equal(fixed) || calls[1].RequestID == "" {
		t.Fatalf("call %+v", calls[1])
	}
	if e.Calls("unknown") != nil {
		t.Fatal("calls for unknown function")
	}
}

func TestCloseReleasesHangingRequest(t *testing.T) {
	e, err := emulator.New(emulator.Config{Default: emulator.Behavior{Hang: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("127.0.0.1:0"); err == nil {
		t.Fatal("second Start succeeded")
	}
	c := client(t, 0)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("x"), ""))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "call in flight", func() bool { return e.Stats().InFlight == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("Close took %s", d)
	}
	if err := <-errc; err == nil {
		t.Fatal("hanging client got a response")
	}
	if st := e.Stats().Functions[testFn]; st.Abandoned != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Get(e.URL() + "/healthz"); err == nil {
		t.Fatal("server still answering after Close")
	}
}

func TestCloseReleasesLatencyInHandler(t *testing.T) {
	// Mounted in a server of the caller's own; Close still releases it.
	e, err := emulator.New(emulator.Config{Default: emulator.Behavior{Latency: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	errc := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Post(srv.URL+"/20260325/functions/f/actions/invoke", "text/plain", strings.NewReader("x"))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "call in flight", func() bool { return e.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("client got an answer from a closed emulator")
	}
	// Closed emulators refuse new invokes.
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/20260325/functions/f/actions/invoke", nil))
	if rec.Code != 503 {
		t.Fatalf("invoke after Close: %d", rec.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []emulator.Config{
		{MaxClockSkew: -1},
		{MaxRequestBytes: -1},
		{MaxRecordedCalls: -1},
		{Default: emulator.Behavior{Status: 42}},
		{Functions: map[string]emulator.Behavior{"": {}}},
		{Functions: map[string]emulator.Behavior{"a/b": {}}},
		{Functions: map[string]emulator.Behavior{"f": {FailRatio: 2}}},
	}
	for _, cfg := range bad {
		if _, err := emulator.New(cfg); err == nil {
			t.Fatalf("New(%+v) accepted", cfg)
		}
	}
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.URL() != "" {
		t.Fatal("URL before Start")
	}
	if err := e.SetBehavior("f", emulator.Behavior{Hang: true, Drop: true}); err == nil {
		t.Fatal("SetBehavior accepted hang+drop")
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("127.0.0.1:0"); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// TestKnownFunctionsOnly: with KnownFunctionsOnly, a function neither
// configured nor given a behaviour does not exist, for GetFunction as for
// invoke, as on OCI; every GetFunction request is counted.
func TestKnownFunctionsOnly(t *testing.T) {
	const known, unknown, later = "ocid1.fnfunc.oc1.phx.known", "ocid1.fnfunc.oc1.phx.unknown", "ocid1.fnfunc.oc1.phx.later"
	e := start(t, emulator.Config{KnownFunctionsOnly: true, Functions: map[string]emulator.Behavior{known: {}}})
	c := client(t, 5*time.Second)
	get := func(fn string) result {
		req, err := http.NewRequest(http.MethodGet, e.URL()+"/20181201/functions/"+fn, nil)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, c, req)
	}
	if r := get(known); r.status != 200 || !strings.Contains(string(r.body), `"invokeEndpoint":"`+e.URL()+`"`) {
		t.Fatalf("GetFunction of a known function: %d %s", r.status, r.body)
	}
	r := get(unknown)
	if code, _ := ociErr(t, r); r.status != 404 || code != "NotAuthorizedOrNotFound" {
		t.Fatalf("GetFunction of an unknown function: %d %s", r.status, code)
	}
	r = do(t, c, newInvoke(t, context.Background(), invokeURL(e, unknown), []byte("x"), ""))
	if code, _ := ociErr(t, r); r.status != 404 || code != "NotAuthorizedOrNotFound" {
		t.Fatalf("invoke of an unknown function: %d %s", r.status, code)
	}
	if r := do(t, c, newInvoke(t, context.Background(), invokeURL(e, known), []byte("x"), "")); r.status != 200 {
		t.Fatalf("invoke of a known function: %d", r.status)
	}
	// Giving a function a behaviour makes it known.
	if err := e.SetBehavior(later, emulator.Behavior{}); err != nil {
		t.Fatal(err)
	}
	if r := get(later); r.status != 200 {
		t.Fatalf("GetFunction after SetBehavior: %d", r.status)
	}
	st := e.Stats()
	if st.Lookups != 3 || st.Calls != 1 {
		t.Fatalf("stats: %d lookups, %d calls; want 3, 1", st.Lookups, st.Calls)
	}
	if _, ok := st.Functions[unknown]; ok {
		t.Fatal("an unknown function got state")
	}
	// Without the option, every well-formed id is a function.
	open := start(t, emulator.Config{})
	req, _ := http.NewRequest(http.MethodGet, open.URL()+"/20181201/functions/"+unknown, nil)
	if r := do(t, c, req); r.status != 200 {
		t.Fatalf("GetFunction without KnownFunctionsOnly: %d", r.status)
	}
}

// TestAdminCallsRoute: recorded calls are listed over HTTP by request id,
// with no headers (they carry the request's signature).
func TestAdminCallsRoute(t *testing.T) {
	e := start(t, emulator.Config{RecordCalls: true})
	c := client(t, 5*time.Second)
	for _, id := range []string{"job-1-1", "job-1-2"} {
		req := newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("abc"), "")
		req.Header.Set("opc-request-id", id)
		do(t, c, req)
	}
	req, err := http.NewRequest("GET", e.URL()+"/emulator/calls/"+testFn, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, c, req)
	var calls []map[string]any
	if err := json.Unmarshal(r.body, &calls); r.status != 200 || err != nil {
		t.Fatalf("%d %v %s", r.status, err, r.body)
	}
	if len(calls) != 2 || calls[0]["requestId"] != "job-1-1" || calls[1]["requestId"] != "job-1-2" || calls[1]["status"] != 200.0 || calls[1]["bodyLen"] != 3.0 {
		t.Fatalf("calls %s", r.body)
	}
	if strings.Contains(strings.ToLower(string(r.body)), "authorization") {
		t.Fatalf("headers listed: %s", r.body)
	}
	req, _ = http.NewRequest("GET", e.URL()+"/emulator/calls/ocid1.fnfunc.oc1.phx.never", nil)
	if r := do(t, c, req); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("a function never called: %d %s", r.status, r.body)
	}
}
