package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func start(t *testing.T, c Config) string {
	t.Helper()
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr().String()
}

func status(t *testing.T, url, auth string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokenGuardsEverythingButTheProbes: with a token, /metrics and
// /debug/pprof answer 401 without it or with a wrong one; /healthz and
// /readyz stay open for orchestrators.
func TestTokenGuardsEverythingButTheProbes(t *testing.T) {
	t.Parallel()
	const token = "admin-token-0123456789"
	base := start(t, Config{Listen: "127.0.0.1:0", Pprof: true, Token: token})
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := status(t, base+path, ""); got != http.StatusOK {
			t.Errorf("%s without token: %d", path, got)
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/nothing"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", token, "Basic " + token} {
			if got := status(t, base+path, auth); got != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", path, auth, got)
			}
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if got := status(t, base+path, "Bearer "+token); got != http.StatusOK {
			t.Errorf("%s with the token: %d", path, got)
		}
	}
}

// TestNoTokenOnLoopbackServesEverything keeps the default (loopback, no
// token) as it was.
func TestNoTokenOnLoopbackServesEverything(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Listen: "127.0.0.1:0", Pprof: true})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		if got := status(t, base+path, ""); got != http.StatusOK {
			t.Errorf("%s: %d", path, got)
		}
	}
}

// TestPprofBeyondLoopbackNeedsAToken: the library refuses it, whatever
// its caller validated; without pprof it starts and warns that /metrics
// is open.
func TestPprofBeyondLoopbackNeedsAToken(t *testing.T) {
	t.Parallel()
	if _, err := Start(Config{Listen: "0.0.0.0:0", Pprof: true}); !errors.Is(err, ErrPprofNeedsToken) {
		t.Fatalf("pprof beyond loopback without a token: %v", err)
	}
	var logs bytes.Buffer
	s, err := Start(Config{Listen: "0.0.0.0:0", Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
	if !strings.Contains(logs.String(), "without a token") {
		t.Errorf("no warning about an open endpoint: %s", logs.String())
	}
}

func TestOnLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.0.0.2:1": true, "[::1]:9090": true, "localhost:9090": true, "LOCALHOST:1": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "10.1.2.3:9090": false, "worker.example:9090": false, "bad": false,
	} {
		if got := OnLoopback(addr); got != want {
			t.Errorf("OnLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
