package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/invoke-worker/worker/queue"
)

// The functions every scenario's jobs call, and what the emulator makes
// of them.
const (
	fnFast   = "ocid1.fnfunc.oc1.dev.aaaaaaaafast"   // echo at once
	fnSlow   = "ocid1.fnfunc.oc1.dev.aaaaaaaaslow"   // echo after slowLatency
	fnFlaky  = "ocid1.fnfunc.oc1.dev.aaaaaaaaflaky"  // 503 (retried) on 30% of calls
	fnBroken = "ocid1.fnfunc.oc1.dev.aaaaaaaabroken" // 400 (not retried): dead-lettered
)

const slowLatency = time.Second

// functions returns the emulator behaviour of each function.
func functions() map[string]string {
	return map[string]string{
		fnFast:   "echo",
		fnSlow:   "latency=" + slowLatency.String(),
		fnFlaky:  "fail_ratio=0.3,fail_status=503",
		fnBroken: "status=400",
	}
}

// functionOf spreads jobs over the functions: 60% fast, 20% slow, 10%
// flaky, 10% broken.
func functionOf(i int) string {
	switch i % 10 {
	case 0, 1:
		return fnSlow
	case 2:
		return fnFlaky
	case 3:
		return fnBroken
	}
	return fnFast
}

// maxAttempts is retry.max_attempts of every worker.
const maxAttempts = 3

// wait bounds each wait for the fleet: a 2-core machine running three
// NATS nodes, the emulator and the workers is slow to converge.
const waitFor = 4 * time.Minute

// fleetConfig is what a scenario asks of its fleet.
type fleetConfig struct {
	workers int
	// settings are extra --set overrides of every worker (timings).
	settings []string
}

// shortTimings make a stuck job come back in seconds, not minutes: the
// assertions stay the same.
var shortTimings = []string{
	"consumer.ack_wait=10s",
	"worker.progress_interval=2s",
	"invoke.timeout.read=5s",
}

// Fleet is a running fleet and the test's view of it.
type Fleet struct {
	t       *testing.T
	tag     string
	docker  *testcontainers.DockerClient
	net     *testcontainers.DockerNetwork
	nodes   []*node
	emu     testcontainers.Container
	emuURL  string
	workers []*worker
	cfg     fleetConfig

	nc   *nats.Conn
	js   jetstream.JetStream
	topo queue.Topology
}

type node struct {
	name   string
	volume string
	port   int // the client port on the host: fixed, so that a restarted node keeps its URL
	c      testcontainers.Container
}

type worker struct {
	id string
	c  testcontainers.Container
}

// startFleet starts three NATS nodes, the emulator and the workers on a
// private network, and connects the test to the cluster.
func startFleet(t *testing.T, cfg fleetConfig) *Fleet {
	t.Helper()
	tag := fleetImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	f := &Fleet{t: t, tag: tag, cfg: cfg, topo: queue.Topology{}.WithDefaults()}
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	f.docker = docker
	nw, err := tcnetwork.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatal(err)
	}
	f.net = nw

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ports := freePorts(t, 3)
	for i := range 3 {
		f.nodes = append(f.nodes, &node{name: fmt.Sprintf("n%d", i+1), volume: fmt.Sprintf("fleet-%s-n%d", suffix, i+1), port: ports[i]})
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, n := range f.nodes {
		wg.Go(func() { errs[i] = f.startNode(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	f.connect(ctx)

	keys := "fleet-" + suffix + "-keys"
	args := []string{"emulator", "--listen", "0.0.0.0:8080", "--generate-keys", "/keys", "--record-calls", "1000000", "--log-level", "warn"}
	for id, spec := range functions() {
		args = append(args, "--function", id+"="+spec)
	}
	f.emu = f.run(ctx, testcontainers.ContainerRequest{
		Image:          tag,
		Cmd:            args,
		ExposedPorts:   []string{"8080/tcp"},
		Networks:       []string{nw.Name},
		NetworkAliases: map[string][]string{nw.Name: {"emulator"}},
		Mounts:         testcontainers.ContainerMounts{testcontainers.VolumeMount(keys, "/keys")},
		WaitingFor:     wait.ForHTTP("/healthz").WithPort("8080/tcp").WithStartupTimeout(time.Minute),
	}, keys)
	f.emuURL = f.endpoint(ctx, f.emu, "8080/tcp")

	// The first worker creates the streams (R3) and the consumer; the
	// others find them.
	for i := range cfg.workers {
		f.workers = append(f.workers, f.startWorker(ctx, fmt.Sprintf("w%d", i+1), keys))
	}
	return f
}

// startNode starts (or creates) a NATS node with JetStream in the cluster.
func (f *Fleet) startNode(ctx context.Context, n *node) error {
	var routes []string
	for _, o := range f.nodes {
		routes = append(routes, "nats://"+o.name+":6222")
	}
	req := testcontainers.ContainerRequest{
		Image:      f.tag,
		Entrypoint: []string{"/natsd"},
		Cmd: []string{
			"-js", "-sd", "/data", "-p", "4222", "-m", "8222",
			"--server_name", n.name, "--cluster_name", "fleet",
			"--cluster", "nats://0.0.0.0:6222", "--routes", strings.Join(routes, ","),
			// Clients (the test on the host, the workers) are given every
			// node's URL; container addresses are not advertised to them.
			"--no_advertise",
		},
		ExposedPorts:   []string{"4222/tcp", "8222/tcp"},
		Networks:       []string{f.net.Name},
		NetworkAliases: map[string][]string{f.net.Name: {n.name}},
		Mounts:         testcontainers.ContainerMounts{testcontainers.VolumeMount(n.volume, "/data")},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("4222/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(n.port)}},
				network.MustParsePort("8222/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}},
			}
		},
		// Healthy: JetStream on, and this node current with the cluster's
		// meta data and its streams.
		WaitingFor: wait.ForHTTP("/healthz").WithPort("8222/tcp").WithStartupTimeout(2 * time.Minute),
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(f.t, c, testcontainers.RemoveVolumes(n.volume))
	if err != nil {
		return fmt.Errorf("node %s: %w", n.name, err)
	}
	n.c = c
	return nil
}

// startWorker starts a worker that reaches NATS and the emulator by their
// names on the network.
func (f *Fleet) startWorker(ctx context.Context, id, keys string) *worker {
	var urls, endpoints []string
	for _, n := range f.nodes {
		urls = append(urls, "nats://"+n.name+":4222")
	}
	for fn := range functions() {
		endpoints = append(endpoints, fn+"=http://emulator:8080")
	}
	args := []string{"run", "--nats=" + strings.Join(urls, ","), "--log-level", "info",
		"--set=worker.id=" + id,
		"--set=streams.replicas=3",
		"--set=invoke.oci.config_file=/keys/oci_config",
		"--set=invoke.endpoints=" + strings.Join(endpoints, ","),
		"--set=http.listen=0.0.0.0:9090",
		fmt.Sprintf("--set=retry.max_attempts=%d", maxAttempts),
		"--set=retry.initial_interval=100ms",
		"--set=retry.max_interval=500ms",
		"--set=nats.reconnect_wait=250ms",
	}
	for _, s := range f.cfg.settings {
		args = append(args, "--set="+s)
	}
	c := f.run(ctx, testcontainers.ContainerRequest{
		Image:          f.tag,
		Cmd:            args,
		ExposedPorts:   []string{"9090/tcp"},
		Networks:       []string{f.net.Name},
		NetworkAliases: map[string][]string{f.net.Name: {id}},
		Mounts:         testcontainers.ContainerMounts{testcontainers.VolumeMount(keys, "/keys")},
		WaitingFor:     wait.ForHTTP("/readyz").WithPort("9090/tcp").WithStartupTimeout(2 * time.Minute),
	})
	return &worker{id: id, c: c}
}

// run starts a container whose ports are published on loopback only, and
// removes it (and volumes) when the test ends.
func (f *Fleet) run(ctx context.Context, req testcontainers.ContainerRequest, volumes ...string) testcontainers.Container {
	f.t.Helper()
	req.HostConfigModifier = func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{}
		for _, p := range req.ExposedPorts {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
		}
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(f.t, c, testcontainers.RemoveVolumes(volumes...))
	if err != nil {
		f.t.Fatalf("start %v: %v", req.Cmd, err)
	}
	return c
}

// endpoint is the host URL of a container's port.
func (f *Fleet) endpoint(ctx context.Context, c testcontainers.Container, port string) string {
	f.t.Helper()
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		f.t.Fatal(err)
	}
	return "http://127.0.0.1:" + p.Port()
}

// connect connects the test to every node through its fixed host port and
// waits until the cluster answers JetStream requests.
func (f *Fleet) connect(ctx context.Context) {
	f.t.Helper()
	var urls []string
	for _, n := range f.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.IgnoreDiscoveredServers(), nats.RetryOnFailedConnect(true))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(nc.Close)
	f.nc = nc
	if f.js, err = jetstream.New(nc); err != nil {
		f.t.Fatal(err)
	}
	f.eventually(ctx, "a JetStream meta leader", func() bool {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := f.js.AccountInfo(actx)
		return err == nil
	})
}

// eventually polls cond every 100ms until it holds or ctx ends.
func (f *Fleet) eventually(ctx context.Context, what string, cond func() bool) {
	f.t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			f.t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends sig to a container's main process.
func (f *Fleet) kill(ctx context.Context, c testcontainers.Container, sig string) {
	f.t.Helper()
	if _, err := f.docker.ContainerKill(ctx, c.GetContainerID(), client.ContainerKillOptions{Signal: sig}); err != nil {
		f.t.Fatalf("kill -%s: %v", sig, err)
	}
}

// waitExit waits until a container's process has exited.
func (f *Fleet) waitExit(ctx context.Context, c testcontainers.Container) {
	f.t.Helper()
	f.eventually(ctx, "the container to exit", func() bool {
		st, err := c.State(ctx)
		return err == nil && !st.Running
	})
}

// jobsLeader is the name of the node leading the jobs stream.
func (f *Fleet) jobsLeader(ctx context.Context) string {
	f.t.Helper()
	var leader string
	f.eventually(ctx, "a jobs stream leader", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := f.js.Stream(actx, f.topo.JobsStream)
		if err != nil {
			return false
		}
		if c := s.CachedInfo().Cluster; c != nil {
			leader = c.Leader
		}
		return leader != ""
	})
	return leader
}

func (f *Fleet) node(name string) *node {
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	f.t.Fatalf("no node %s", name)
	return nil
}

// ready checks that every worker answers /readyz with 200 and every node
// /healthz.
func (f *Fleet) ready(ctx context.Context) {
	f.t.Helper()
	check := func(what, url string) {
		f.eventually(ctx, what+" ready", func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	for _, w := range f.workers {
		check("worker "+w.id, f.endpoint(ctx, w.c, "9090/tcp")+"/readyz")
	}
	for _, n := range f.nodes {
		check("node "+n.name, f.endpoint(ctx, n.c, "8222/tcp")+"/healthz")
	}
}

// logs returns the tail of a container's output.
func logs(ctx context.Context, c testcontainers.Container, max int) string {
	r, err := c.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// dumpOnFailure logs every container's output tail when the test failed.
func (f *Fleet) dumpOnFailure() {
	f.t.Cleanup(func() {
		if !f.t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, w := range f.workers {
			f.t.Logf("worker %s:\n%s", w.id, logs(ctx, w.c, 6000))
		}
		for _, n := range f.nodes {
			f.t.Logf("node %s:\n%s", n.name, logs(ctx, n.c, 3000))
		}
	})
}

// freePorts returns n loopback ports free now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
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

// emulatorCalls returns every recorded call of every function.
func (f *Fleet) emulatorCalls(ctx context.Context) []call {
	f.t.Helper()
	var all []call
	for fn := range functions() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.emuURL+"/emulator/calls/"+fn, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			f.t.Fatal(err)
		}
		var calls []call
		err = json.NewDecoder(resp.Body).Decode(&calls)
		resp.Body.Close()
		if err != nil {
			f.t.Fatalf("calls of %s: %v", fn, err)
		}
		all = append(all, calls...)
	}
	return all
}

// call is one recorded invocation (the emulator's GET /emulator/calls).
type call struct {
	RequestID string    `json:"requestId"`
	Status    int       `json:"status"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// job and attempt of the request id the worker sends, <job-id>-<attempt>.
func (c call) job() (id string, attempt int) {
	i := strings.LastIndexByte(c.RequestID, '-')
	if i < 0 {
		return c.RequestID, 0
	}
	n, _ := strconv.Atoi(c.RequestID[i+1:])
	return c.RequestID[:i], n
}
