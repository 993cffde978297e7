package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/service"
)

// TestRunFansOutConfiguredRoutes: Run with a routes section creates the
// route's stream, fans its events out to both functions next to the
// worker running the jobs, is ready once both consume, and stops cleanly.
func TestRunFansOutConfiguredRoutes(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{})
	const fnOne, fnTwo = "ocid1.fnfunc.oc1.phx.aaaaaaaaone", "ocid1.fnfunc.oc1.phx.aaaaaaaatwo"
	cfgFile := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, `
routes:
  - name: signups
    stream: SIGNUPS
    stream_subjects: [signups.>]
    functions: [%s, %s]
    intent: cloudevent
    cloudevent: {source: /test}
`, fnOne, fnTwo), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{File: cfgFile, Overrides: []config.Override{
		{Key: "nats.url", Value: n.Server.ClientURL()},
		{Key: "invoke.oci.config_file", Value: creds.ConfigFile},
		{Key: "invoke.endpoints", Value: fnOne + "=" + emu.URL() + "," + fnTwo + "=" + emu.URL()},
		{Key: "http.listen", Value: ""},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, cfg, zerolog.Nop(), service.Options{OnReady: func() { close(ready) }})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testenv.Wait):
			t.Error("Run did not stop")
		}
	}
	defer stop()

	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(testenv.Wait):
		t.Fatal("Run never became ready")
	}
	testenv.Eventually(t, "the route's stream", func() bool {
		_, err := n.JS.Stream(context.Background(), "SIGNUPS")
		return err == nil
	})
	pctx, pcancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer pcancel()
	const events = 10
	for i := range events {
		if _, err := n.JS.Publish(pctx, "signups.new", fmt.Appendf(nil, `{"user":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "every event fanned out and run", func() bool {
		return len(emu.Calls(fnOne)) == events && len(emu.Calls(fnTwo)) == events
	})
	for _, c := range emu.Calls(fnOne) {
		if c.Headers.Get("Fn-Intent") != "cloudevent" || !c.Signed {
			t.Fatalf("call %+v", c.Headers)
		}
	}
	stop()
}
