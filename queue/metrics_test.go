package queue_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/queue"
)

// TestConnCollectorFollowsTheConnection: connected, then down while the
// server restarts, then up again with one reconnect counted.
func TestConnCollectorFollowsTheConnection(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(queue.NewConnCollector(n.Conn))
	expect := func(connected, reconnects string) string {
		return "# HELP invoke_worker_nats_connected 1 while the connection to NATS is up, 0 while it is reconnecting or closed.\n" +
			"# TYPE invoke_worker_nats_connected gauge\ninvoke_worker_nats_connected " + connected + "\n" +
			"# HELP invoke_worker_nats_reconnects_total Reconnections to NATS since the process started.\n" +
			"# TYPE invoke_worker_nats_reconnects_total counter\ninvoke_worker_nats_reconnects_total " + reconnects + "\n"
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect("1", "0"))); err != nil {
		t.Fatal(err)
	}
	n.Server.Shutdown()
	testenv.Eventually(t, "disconnected", func() bool { return !n.Conn.IsConnected() })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect("0", "0"))); err != nil {
		t.Fatal(err)
	}
	n.Restart(t)
	testenv.Eventually(t, "reconnected", func() bool { return n.Conn.IsConnected() })
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect("1", "1"))); err != nil {
		t.Fatal(err)
	}
}
