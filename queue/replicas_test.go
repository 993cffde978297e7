package queue_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/queue"
)

// TestReplicasOverSingleServer: a server outside a cluster holds one
// replica; asking for three fails with ErrTooManyReplicas, for the streams
// and for the state bucket, not with the bare JetStream error.
func TestReplicasOverSingleServer(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	topo := n.Topology
	topo.Replicas = 3
	err := queue.EnsureStreams(ctx, n.JS, topo)
	if !errors.Is(err, queue.ErrTooManyReplicas) || !strings.Contains(err.Error(), "asked for 3") {
		t.Fatalf("streams: %v", err)
	}
	t.Log(err)
	_, err = queue.EnsureStateStore(ctx, n.JS, "", time.Hour, 3)
	if !errors.Is(err, queue.ErrTooManyReplicas) {
		t.Fatalf("state bucket: %v", err)
	}
	// One replica is not "too many", whatever else goes wrong.
	topo.Replicas, topo.WaitPrefix = 1, "invoke.jobs"
	if err := queue.EnsureStreams(ctx, n.JS, topo); err == nil || errors.Is(err, queue.ErrTooManyReplicas) {
		t.Fatalf("another error: %v", err)
	}
}

// TestReplicasFollowConfigInCluster: on a three-node cluster, raising
// streams.replicas from 1 to 3 updates every stream and bucket in place,
// and the consumer follows its stream; five replicas are refused with
// ErrTooManyReplicas.
func TestReplicasFollowConfigInCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	urls := startCluster(t, 3)
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URLs: strings.Join(urls, ","), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.Wait)
	defer cancel()
	waitMetaLeader(ctx, t, js)

	topo := queue.Topology{Replicas: 1}.WithDefaults()
	if _, err := queue.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureStateStore(ctx, js, "", time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "INVOKE_DLQ_REPLAYS", Replicas: 1}); err != nil {
		t.Fatal(err)
	}

	topo.Replicas = 3
	if err := queue.EnsureStreams(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if _, _, err := queue.EnsureConsumer(ctx, js, topo, queue.ConsumerPolicy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureStateStore(ctx, js, "", time.Hour, 3); err != nil {
		t.Fatal(err)
	}
	if err := queue.UpdateBucketReplicas(ctx, js, "INVOKE_DLQ_REPLAYS", 3); err != nil {
		t.Fatal(err)
	}
	if err := queue.UpdateBucketReplicas(ctx, js, "NO_SUCH_BUCKET", 3); err != nil {
		t.Fatalf("a missing bucket is not an error: %v", err)
	}
	for _, name := range []string{
		topo.JobsStream, topo.ResultsStream, topo.DLQStream,
		"KV_" + queue.StateBucketDefault, "KV_INVOKE_DLQ_REPLAYS",
		"OBJ_" + queue.JobBodiesDefault, "OBJ_" + queue.ResultBodiesDefault,
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas, want 3", name, r)
		}
	}
	// The consumer follows its stream: a leader and two replicas.
	testenv.Eventually(t, "the consumer to have three copies", func() bool {
		c, err := js.Consumer(ctx, topo.JobsStream, topo.Durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == 2
	})

	topo.Replicas = 5
	err = queue.EnsureStreams(ctx, js, topo)
	if !errors.Is(err, queue.ErrTooManyReplicas) || !strings.Contains(err.Error(), "asked for 5") {
		t.Fatalf("five replicas on three servers: %v", err)
	}
	if err := queue.UpdateBucketReplicas(ctx, js, "INVOKE_DLQ_REPLAYS", 5); !errors.Is(err, queue.ErrTooManyReplicas) {
		t.Fatalf("markers bucket, five replicas: %v", err)
	}
}

// startCluster starts n JetStream servers on loopback routed to each other
// and returns their client URLs.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	return startNodes(t, clusterOptions(t, n)...)
}

// clusterOptions are the options of n servers routed to each other.
func clusterOptions(t *testing.T, n int) []*server.Options {
	t.Helper()
	clusterPorts := freePorts(t, n)
	var routes []*url.URL
	for _, p := range clusterPorts {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	opts := make([]*server.Options, n)
	for i := range n {
		opts[i] = &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "c", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:     routes,
		}
	}
	return opts
}

// startNodes starts servers concurrently and returns their client URLs
// once each accepts clients.
func startNodes(t *testing.T, opts ...*server.Options) []string {
	t.Helper()
	servers := make([]*server.Server, len(opts))
	for i, o := range opts {
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.Start() })
	}
	wg.Wait()
	urls := make([]string, len(servers))
	for i, s := range servers {
		testenv.Eventually(t, "a client port", func() bool { return s.Addr() != nil })
		urls[i] = s.ClientURL()
	}
	return urls
}

// freePorts returns n ports free now on loopback.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// waitMetaLeader waits until the cluster answers JetStream requests (until
// a meta leader is elected, requests hang rather than fail), and every
// peer is online.
func waitMetaLeader(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	t.Helper()
	testenv.Eventually(t, "a JetStream meta leader", func() bool {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.AccountInfo(actx)
		return err == nil
	})
	// A meta leader may not yet see every peer online: wait until a
	// stream can be placed on all three, so that the test's own
	// placements do not race the cluster forming on a busy machine.
	testenv.Eventually(t, "every peer online", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := js.CreateStream(actx, jetstream.StreamConfig{Name: "CLUSTER_PROBE", Subjects: []string{"cluster.probe"}, Replicas: 3}); err != nil {
			return false
		}
		return js.DeleteStream(actx, "CLUSTER_PROBE") == nil
	})
}

// TestWaitJetStreamWaitsForAMetaLeader: one node of three has no quorum and
// leaves JetStream requests unanswered; WaitJetStream keeps trying, with
// a short deadline per try, until the others are up.
func TestWaitJetStreamWaitsForAMetaLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	opts := clusterOptions(t, 3)
	urls := startNodes(t, opts[0])
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URLs: urls[0], ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := queue.WaitJetStream(short, js); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("without a meta leader: %v", err)
	}

	done := make(chan error, 1)
	ctx, cancel2 := context.WithTimeout(context.Background(), 2*testenv.Wait)
	defer cancel2()
	go func() { done <- queue.WaitJetStream(ctx, js) }()
	// A request sent now would hang until its deadline; WaitJetStream's
	// tries do not.
	time.Sleep(1500 * time.Millisecond)
	startNodes(t, opts[1], opts[2])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	actx, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	if _, err := js.AccountInfo(actx); err != nil {
		t.Fatalf("after WaitJetStream: %v", err)
	}
}
