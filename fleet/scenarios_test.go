package fleet

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/invoke-worker/worker/queue"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// scenarioTimeout bounds one scenario, fleet start-up included.
const scenarioTimeout = 8 * time.Minute

// recoveryTarget is issue 13 item 3's bound on the time until a crashed
// worker's jobs run again elsewhere (their next invocation begins), with
// default settings (scenario d runs with them, so the figure is the
// product's). Not met yet: they wait out the consumer's ack wait
// (queue.AckWaitDefault, 90s), so scenario d asserts recoveryBound and
// logs whether the target was met.
const recoveryTarget = 30 * time.Second

// recoveryBound is the ack wait, then the redelivery, the invocation and
// publishing its outcome on a busy 2-core machine.
const recoveryBound = queue.AckWaitDefault + 30*time.Second

// TestFleetJobsLeaderKilled (scenario a): the node leading the jobs stream
// is killed mid-run and started again later with its volume.
func TestFleetJobsLeaderKilled(t *testing.T) {
	f := startFleet(t, fleetConfig{workers: 2, settings: shortTimings})
	f.dumpOnFailure()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	l := f.startLoad(ctx, "a", jobsPerScenario)
	l.waitSettled(ctx, jobsPerScenario/5)

	leader := f.node(f.jobsLeader(ctx))
	at := time.Now()
	l.fault(at)
	f.kill(ctx, leader.c, "KILL")
	f.waitExit(ctx, leader.c)
	f.eventually(ctx, "a new jobs stream leader", func() bool {
		return f.jobsLeader(ctx) != leader.name
	})
	failover := time.Since(at)
	// Down a while longer: jobs flow on the two nodes left.
	time.Sleep(5 * time.Second)
	if err := leader.c.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", leader.name, err)
	}
	l.waitDone(ctx)
	s := l.check(ctx)
	f.ready(ctx)
	t.Logf("scenario a: killed %s (jobs stream leader); a new leader after %s; %s back after %s",
		leader.name, failover.Round(100*time.Millisecond), leader.name, time.Since(at).Round(time.Second))
	_ = s
}

// TestFleetWorkerPartitioned (scenario b): one worker is cut off from the
// network for longer than the ack wait, then reconnected. Its jobs run
// elsewhere, and its late results change nothing.
func TestFleetWorkerPartitioned(t *testing.T) {
	f := startFleet(t, fleetConfig{workers: 2, settings: shortTimings})
	f.dumpOnFailure()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	l := f.startLoad(ctx, "b", jobsPerScenario)
	// Known defects of the worker (README, "Scaling out"; issue 13). The
	// worker package's lapse rule (worker/reach.go, tested there) fixes
	// both, but service does not wire it yet (scenario e).
	l.pending = map[defect]string{
		// Back on the network, the cut-off worker settles jobs that
		// another worker settled meanwhile: a late success after
		// another worker's dead-letter is stored beside the record.
		bothOutcomes: "a cut-off worker's late success after another worker dead-lettered the job",
		// An attempt made while cut off is not recorded in the job's
		// state, so the job's next delivery elsewhere makes it again.
		overAttempts: "an attempt made by a cut-off worker is not counted",
	}
	l.waitSettled(ctx, jobsPerScenario/5)

	w := f.workers[1]
	at := time.Now()
	l.fault(at)
	if _, err := f.docker.NetworkDisconnect(ctx, f.net.ID, client.NetworkDisconnectOptions{Container: w.c.GetContainerID(), Force: true}); err != nil {
		t.Fatal(err)
	}
	const cut = 10*time.Second + 5*time.Second // the ack wait (shortTimings) and more
	time.Sleep(cut)
	if _, err := f.docker.NetworkConnect(ctx, f.net.ID, client.NetworkConnectOptions{
		Container: w.c.GetContainerID(), EndpointConfig: &network.EndpointSettings{Aliases: []string{w.id}},
	}); err != nil {
		t.Fatal(err)
	}
	l.waitDone(ctx)
	f.ready(ctx)
	// The cut-off worker is back: whatever it still had to publish is in.
	l.check(ctx)
	t.Logf("scenario b: %s cut off for %s", w.id, cut)
}

// TestFleetRollingRestart (scenario c): every worker is restarted in turn
// with SIGTERM while jobs flow.
func TestFleetRollingRestart(t *testing.T) {
	f := startFleet(t, fleetConfig{workers: 2, settings: shortTimings})
	f.dumpOnFailure()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	l := f.startLoad(ctx, "c", jobsPerScenario)
	for i, w := range f.workers {
		l.waitSettled(ctx, (i+1)*jobsPerScenario/5)
		l.fault(time.Now())
		timeout := 90 * time.Second // past the stop's bound (drain_timeout + settle): docker must not SIGKILL it
		began := time.Now()
		if err := w.c.Stop(ctx, &timeout); err != nil {
			t.Fatalf("stop %s: %v", w.id, err)
		}
		st, err := w.c.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExitCode != 0 {
			t.Errorf("%s exited %d on SIGTERM, want 0", w.id, st.ExitCode)
		}
		stopped := time.Since(began)
		if err := w.c.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", w.id, err)
		}
		t.Logf("scenario c: %s stopped in %s, ready again after %s", w.id, stopped.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	}
	l.waitDone(ctx)
	l.check(ctx)
	f.ready(ctx)
}

// TestFleetWorkerKilled (scenario d): one worker is SIGKILLed; the time
// until its jobs complete elsewhere is measured. It runs with the default
// consumer.ack_wait, so the figure is the product's.
func TestFleetWorkerKilled(t *testing.T) {
	f := startFleet(t, fleetConfig{workers: 2})
	f.dumpOnFailure()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	l := f.startLoad(ctx, "d", jobsPerScenario)
	l.waitSettled(ctx, jobsPerScenario/5)

	w := f.workers[1]
	at := time.Now()
	l.fault(at)
	f.kill(ctx, w.c, "KILL")
	f.waitExit(ctx, w.c)
	l.waitDone(ctx)
	s := l.check(ctx)
	if s.inFlight == 0 {
		t.Fatal("no invocation was in flight when the worker was killed: nothing measured")
	}
	bound := recoveryBound
	t.Logf("scenario d: issue 13's target, under %s: met %v", recoveryTarget, s.recovery < recoveryTarget)
	t.Logf("scenario d: %s killed; its %d jobs in flight ran again elsewhere within %s (bound %s), all completed after %s",
		w.id, s.inFlight, s.recovery.Round(100*time.Millisecond), bound, s.completed.Round(100*time.Millisecond))
	if s.recovery >= bound {
		t.Errorf("a killed worker's jobs ran again elsewhere after %s, want under %s", s.recovery, bound)
	}
	// The fleet is whole again once the killed worker is back.
	if err := w.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f.ready(ctx)
}

// TestFleetClusterRestart (scenario e): all three NATS nodes are stopped
// and started again with their volumes; no job a publisher saw
// acknowledged is lost.
func TestFleetClusterRestart(t *testing.T) {
	f := startFleet(t, fleetConfig{workers: 2, settings: shortTimings})
	f.dumpOnFailure()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	l := f.startLoad(ctx, "e", jobsPerScenario)
	// A known defect (README, "Scaling out"; issue 13): deliveries the
	// cluster made as it stopped or came back (to connections it then
	// closed, acknowledgements it lost) are each charged, and a few jobs
	// of functions that never fail spend their attempts so: 0 to 10 of
	// 5,000 dead-lettered as exhausted in recent runs, none lost (their
	// records replay). Every other check still fails the scenario.
	l.pending = map[defect]string{
		healthyDeadLettered: "deliveries lost in a full cluster restart are charged",
	}
	l.waitSettled(ctx, jobsPerScenario/5)

	at := time.Now()
	l.fault(at)
	each := func(do func(n *node) error) {
		var wg sync.WaitGroup
		errs := make([]error, len(f.nodes))
		for i, n := range f.nodes {
			wg.Go(func() { errs[i] = do(n) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", f.nodes[i].name, err)
			}
		}
	}
	timeout := 30 * time.Second
	each(func(n *node) error { return n.c.Stop(ctx, &timeout) })
	down := time.Since(at)
	time.Sleep(5 * time.Second)
	each(func(n *node) error { return n.c.Start(ctx) })
	f.jobsLeader(ctx)
	back := time.Since(at)
	l.waitDone(ctx)
	l.check(ctx)
	f.ready(ctx)
	t.Logf("scenario e: all nodes stopped in %s, serving again %s after the stop began", down.Round(100*time.Millisecond), back.Round(100*time.Millisecond))
}
