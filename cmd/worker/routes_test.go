package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
)

// TestRunFansOutConfiguredRoutes: `worker run` with a routes section
// creates the route's stream, fans its events out to both functions next
// to the worker running the jobs, and stops cleanly.
func TestRunFansOutConfiguredRoutes(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{})
	const fnOne, fnTwo = "ocid1.fnfunc.oc1.phx.aaaaaaaaone", "ocid1.fnfunc.oc1.phx.aaaaaaaatwo"
	cfgFile := writeTemp(t, "worker.yaml", fmt.Appendf(nil, `
routes:
  - name: signups
    stream: SIGNUPS
    stream_subjects: [signups.>]
    functions: [%s, %s]
    intent: cloudevent
    cloudevent: {source: /test}
`, fnOne, fnTwo))
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", cfgFile, "--nats", n.Server.ClientURL(), "--log-level", "warn",
			"--set", "invoke.oci.config_file=" + creds.ConfigFile,
			"--set", "invoke.endpoints=" + fnOne + "=" + emu.URL() + "," + fnTwo + "=" + emu.URL(),
			"--set", "http.listen=",
		}, &out, &errOut)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run exited %d\n%s", code, errOut.String())
			}
		case <-time.After(testenv.Wait):
			t.Error("run did not stop")
		}
	}
	defer stop()

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
