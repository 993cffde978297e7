package job_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// TestMessageSizeIsWhatTheServerCounts: a message of exactly the max
// payload by MessageSize is accepted, one byte more is not.
func TestMessageSizeIsWhatTheServerCounts(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{}, testenv.MaxPayload(64<<10))
	limit := int(n.Conn.MaxPayload())
	msg := nats.NewMsg("probe")
	msg.Header.Set(job.HeaderFunctionID, "ocid1.fnfunc.oc1.phx.aaaa")
	msg.Header.Add("X-Two", "a")
	msg.Header.Add("X-Two", "bb")
	msg.Data = make([]byte, limit)
	msg.Data = msg.Data[:limit-(job.MessageSize(msg)-limit)]
	if job.MessageSize(msg) != limit {
		t.Fatalf("size %d, limit %d", job.MessageSize(msg), limit)
	}
	if err := n.Conn.PublishMsg(msg); err != nil {
		t.Fatalf("a message of exactly the limit: %v", err)
	}
	msg.Data = append(msg.Data, 0)
	if err := n.Conn.PublishMsg(msg); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("one byte over: %v", err)
	}
}
