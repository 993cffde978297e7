package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/queue"
)

// serverConsumer reads the shared consumer's configuration from the server.
func serverConsumer(t *testing.T, js jetstream.JetStream, topo queue.Topology) jetstream.ConsumerConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c, err := js.Consumer(ctx, topo.JobsStream, topo.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.Config
}

func ensureConsumer(t *testing.T, js jetstream.JetStream, topo queue.Topology, p queue.ConsumerPolicy) queue.ConsumerReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	_, rep, err := queue.EnsureConsumer(ctx, js, topo, p)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestEnsureConsumerMixedSettingsDoNotFlip: processes whose consumer.*
// settings differ start one after the other; the consumer keeps the
// settings it was created with, and each process says what differs.
func TestEnsureConsumerMixedSettingsDoNotFlip(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{AckWait: 40 * time.Second, MaxAckPending: 500})
	other := n.Topology
	other.AckWait, other.MaxAckPending = 70*time.Second, 800

	for i := range 3 {
		var logs bytes.Buffer
		log := zerolog.New(&logs)
		rep := ensureConsumer(t, n.JS, other, queue.ConsumerPolicy{Logger: &log})
		if rep.Created || len(rep.Updated) != 0 {
			t.Fatalf("round %d: %+v", i, rep)
		}
		want := []queue.ConsumerSetting{
			{Name: "consumer.ack_wait", Ours: "1m10s", Server: "40s"},
			{Name: "consumer.max_ack_pending", Ours: "800", Server: "500"},
		}
		if len(rep.Kept) != 2 || rep.Kept[0] != want[0] || rep.Kept[1] != want[1] {
			t.Fatalf("round %d: kept %+v, want %+v", i, rep.Kept, want)
		}
		if got := serverConsumer(t, n.JS, n.Topology); got.AckWait != 40*time.Second || got.MaxAckPending != 500 {
			t.Fatalf("round %d: the consumer flipped to ack_wait %s, max_ack_pending %d", i, got.AckWait, got.MaxAckPending)
		}
		// The warning names every differing key with both values.
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("one JSON line: %v: %s", err, logs.String())
		}
		if line["level"] != "warn" || !strings.Contains(line["message"].(string), "consumer.update") {
			t.Fatalf("warning: %s", logs.String())
		}
		for _, s := range want {
			got, _ := line[s.Name].(map[string]any)
			if got["ours"] != s.Ours || got["server"] != s.Server {
				t.Fatalf("warning lacks %s ours %s server %s: %s", s.Name, s.Ours, s.Server, logs.String())
			}
		}
		// The creator's settings are the same as the server's: nothing
		// to say.
		logs.Reset()
		rep = ensureConsumer(t, n.JS, n.Topology, queue.ConsumerPolicy{Logger: &log})
		if len(rep.Kept)+len(rep.Updated) != 0 || logs.Len() != 0 {
			t.Fatalf("same settings: %+v, logged %s", rep, logs.String())
		}
	}
}

// TestEnsureConsumerUpdateApplies: consumer.update makes this process's
// settings the consumer's, and says what changed.
func TestEnsureConsumerUpdateApplies(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{AckWait: 40 * time.Second})
	mine := n.Topology
	mine.AckWait = 75 * time.Second
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	rep := ensureConsumer(t, n.JS, mine, queue.ConsumerPolicy{Update: true, Logger: &log})
	if len(rep.Kept) != 0 || len(rep.Updated) != 1 || rep.Updated[0] != (queue.ConsumerSetting{Name: "consumer.ack_wait", Ours: "1m15s", Server: "40s"}) {
		t.Fatalf("%+v", rep)
	}
	if got := serverConsumer(t, n.JS, n.Topology); got.AckWait != 75*time.Second {
		t.Fatalf("ack_wait %s after consumer.update", got.AckWait)
	}
	if s := logs.String(); !strings.Contains(s, `"consumer.ack_wait":{"was":"40s","now":"1m15s"}`) || !strings.Contains(s, "updated") {
		t.Fatalf("log: %s", s)
	}
}

// TestEnsureConsumerAppliesFilterAlways: a consumer made by an older
// version reads every subject of the jobs stream, waiting copies
// included. The filter is applied without consumer.update; its tunable
// settings are kept.
func TestEnsureConsumerAppliesFilterAlways(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	if err := n.JS.DeleteConsumer(ctx, n.Topology.JobsStream, n.Topology.Durable); err != nil {
		t.Fatal(err)
	}
	old := n.Topology.ConsumerConfig()
	old.FilterSubjects, old.AckWait = nil, 45*time.Second
	old.MaxWaiting = 77 // set by hand: not the product's to change
	if _, err := n.JS.CreateConsumer(ctx, n.Topology.JobsStream, old); err != nil {
		t.Fatal(err)
	}
	rep := ensureConsumer(t, n.JS, n.Topology, queue.ConsumerPolicy{})
	if len(rep.Updated) != 1 || rep.Updated[0].Name != "filter_subjects" || rep.Updated[0].Ours != "invoke.jobs.>" || rep.Updated[0].Server != "" {
		t.Fatalf("updated %+v", rep.Updated)
	}
	if len(rep.Kept) != 1 || rep.Kept[0].Name != "consumer.ack_wait" {
		t.Fatalf("kept %+v", rep.Kept)
	}
	got := serverConsumer(t, n.JS, n.Topology)
	if f := got.FilterSubjects; got.FilterSubject != "invoke.jobs.>" && (len(f) != 1 || f[0] != "invoke.jobs.>") {
		t.Fatalf("filter %q %q", got.FilterSubject, got.FilterSubjects)
	}
	if got.AckWait != 45*time.Second || got.MaxWaiting != 77 {
		t.Fatalf("ack_wait %s, max_waiting %d: kept settings changed", got.AckWait, got.MaxWaiting)
	}
}

// TestEnsureConsumerCreatesWhenMissing: the first process creates the
// consumer with its settings.
func TestEnsureConsumerCreatesWhenMissing(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	if err := n.JS.DeleteConsumer(ctx, n.Topology.JobsStream, n.Topology.Durable); err != nil {
		t.Fatal(err)
	}
	mine := n.Topology
	mine.AckWait = 33 * time.Second
	rep := ensureConsumer(t, n.JS, mine, queue.ConsumerPolicy{})
	if !rep.Created || len(rep.Kept)+len(rep.Updated) != 0 {
		t.Fatalf("%+v", rep)
	}
	if got := serverConsumer(t, n.JS, n.Topology); got.AckWait != 33*time.Second || got.Replicas != 0 {
		t.Fatalf("ack_wait %s, replicas %d (want 0: follow the stream)", got.AckWait, got.Replicas)
	}
}
