package admin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/admin"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestReadyMetricMirrorsReadyz: /metrics carries invoke_worker_ready, 1
// exactly when /readyz answers 200, next to the given registry's metrics.
func TestReadyMetricMirrorsReadyz(t *testing.T) {
	var ready atomic.Bool
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "app_things_total", Help: "Things."}))
	srv, err := admin.Start(admin.Config{
		Listen:   "127.0.0.1:0",
		Gatherer: reg,
		Logger:   zerolog.Nop(),
		Ready: func() error {
			if ready.Load() {
				return nil
			}
			return errors.New("not connected to NATS")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.Addr().String()

	for _, up := range []bool{false, true, false} {
		ready.Store(up)
		code, _ := get(t, base+"/readyz")
		_, metrics := get(t, base+"/metrics")
		want := "invoke_worker_ready 0\n"
		if up {
			want = "invoke_worker_ready 1\n"
		}
		if (code == http.StatusOK) != up || !strings.Contains(metrics, want) || !strings.Contains(metrics, "app_things_total 0\n") {
			t.Fatalf("ready %v: /readyz %d, /metrics:\n%s", up, code, metrics)
		}
	}
}
