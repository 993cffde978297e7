package queue_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/queue"
)

// TestSamplerCountsDeadLettersByReason: the depth per reason follows
// records stored and deleted, other reasons' and other subjects' messages
// are not counted, and a counting consumer deleted under the sampler is
// created again.
func TestSamplerCountsDeadLettersByReason(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	s := queue.NewSampler(n.JS, n.Topology, []string{"invalid", "permanent", "exhausted"})

	sample := func() map[string]uint64 {
		t.Helper()
		cs, err := s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cs.DeadLetters
	}
	want := func(got, want map[string]uint64) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Fatalf("depth %v, want %v", got, want)
		}
	}
	want(sample(), map[string]uint64{"invalid": 0, "permanent": 0, "exhausted": 0})

	seqs := map[string][]uint64{}
	for reason, count := range map[string]int{"invalid": 2, "permanent": 3, "expired": 1} {
		for i := range count {
			msg := nats.NewMsg(fmt.Sprintf("%s.%s.job-%d", n.Topology.DLQPrefix, reason, i))
			ack, err := n.JS.PublishMsg(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			seqs[reason] = append(seqs[reason], ack.Sequence)
		}
	}
	// "expired" is not sampled: no label for it.
	want(sample(), map[string]uint64{"invalid": 2, "permanent": 3, "exhausted": 0})

	stream, err := n.JS.Stream(ctx, n.Topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, seqs["permanent"][1]); err != nil {
		t.Fatal(err)
	}
	want(sample(), map[string]uint64{"invalid": 2, "permanent": 2, "exhausted": 0})

	if err := n.JS.DeleteConsumer(ctx, n.Topology.DLQStream, queue.DepthConsumerPrefix+"invalid"); err != nil {
		t.Fatal(err)
	}
	want(sample(), map[string]uint64{"invalid": 2, "permanent": 2, "exhausted": 0})
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(n.Topology.DLQPrefix+".invalid.>")); err != nil {
		t.Fatal(err)
	}
	want(sample(), map[string]uint64{"invalid": 0, "permanent": 2, "exhausted": 0})
}
