package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invoke-worker/worker/bench"
)

// consumerEnv makes this test binary a consumer process (bench.Config.Spawn)
// instead of running tests; its value says which worker to run.
const consumerEnv = "BENCH_TEST_CONSUMER_PROCESS"

func TestMain(m *testing.M) {
	if mode := os.Getenv(consumerEnv); mode != "" {
		w := runWorker
		if mode == "failing" {
			w = func(context.Context, bench.WorkerEnv) error { return errors.New("no way to reach the function") }
		}
		if err := bench.ServeConsumer(context.Background(), os.Stdin, os.Stdout, bench.ConsumerConfig{Worker: w}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// spawner starts this test binary as consumer processes and remembers
// them, so a test can check that none outlives the run.
type spawner struct {
	mode string
	mu   sync.Mutex
	cmds []*exec.Cmd
}

func (s *spawner) spawn(context.Context) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), consumerEnv+"="+s.mode)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmd)
	return cmd, nil
}

func (s *spawner) checkAllExited(t *testing.T, want int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cmds) != want {
		t.Errorf("%d consumer processes started, want %d", len(s.cmds), want)
	}
	for i, c := range s.cmds {
		if c.ProcessState == nil {
			t.Errorf("consumer process %d was not waited for", i)
		}
	}
}

// With Spawn the worker, (a) and (d) each run in a process of their own,
// one per measurement, and every figure of theirs is that process's: a
// consumer process allocates a fraction of what the whole bench process
// does for the same jobs (the NATS server, the emulator and the load
// generator allocate the rest), and none outlives the run.
func TestIsolatedRunMeasuresEachConsumerInItsOwnProcess(t *testing.T) {
	const jobs = 300
	sp := &spawner{mode: "worker"}
	cfg := bench.Config{
		Spawn:        sp.spawn,
		Jobs:         jobs,
		Warmup:       30,
		Concurrency:  8,
		Unsigned:     true,
		Ceilings:     true,
		SignDuration: 50 * time.Millisecond,
		Timeout:      time.Minute,
	}
	rep, err := bench.Run(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Settings.Isolated {
		t.Error("report does not say the consumers were isolated")
	}
	for _, m := range []bench.Measurement{rep.Worker, rep.Ceilings.NATSLoop, rep.Ceilings.BareLoop} {
		checkMeasurement(t, m, jobs)
		checkAdded(t, m, 0)
		if m.PeakRSSScope != "measurement" {
			t.Errorf("%s: peak RSS over %q, want the measurement's own process", m.Name, m.PeakRSSScope)
		}
	}
	sp.checkAllExited(t, 3) // the worker, (d) and (a)

	cfg.Spawn, cfg.Worker, cfg.Ceilings = nil, runWorker, false
	shared, err := bench.Run(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if shared.Settings.Isolated {
		t.Error("an in-process run reports isolation")
	}
	if own, all := rep.Worker.AllocsPerJob, shared.Worker.AllocsPerJob; !(own < 0.8*all) {
		t.Errorf("the worker's process allocates %.0f per job, the whole bench process %.0f: not the consumer's own figure", own, all)
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "a fresh process of their own") || !strings.Contains(b.String(), "consumer process's own") {
		t.Errorf("table does not say where the figures come from:\n%s", b.String())
	}
}

// A consumer process that fails fails the measurement with its reason,
// promptly, and is not left running.
func TestIsolatedConsumerFailureIsReported(t *testing.T) {
	sp := &spawner{mode: "failing"}
	start := time.Now()
	_, err := bench.Run(testContext(t), bench.Config{Spawn: sp.spawn, Jobs: 50, Unsigned: true, Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "no way to reach the function") {
		t.Fatalf("err = %v, want the consumer's own error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s to notice", d)
	}
	sp.checkAllExited(t, 1)
}

// --cpuprofile profiles the consumer's process: the profile comes back
// from it whole.
func TestIsolatedCPUProfileIsTheConsumers(t *testing.T) {
	sp := &spawner{mode: "worker"}
	var prof closeBuffer
	_, err := bench.Run(testContext(t), bench.Config{
		Spawn: sp.spawn, Jobs: 200, Concurrency: 8, Unsigned: true, Timeout: time.Minute,
		CPUProfile: func(name string) (io.WriteCloser, error) {
			if name != "worker" {
				return nil, nil
			}
			return &prof, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is gzip-compressed protobuf.
	if b := prof.Bytes(); len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b || !prof.closed {
		t.Errorf("profile of %d bytes (closed %v), want a gzipped pprof", len(b), prof.closed)
	}
}

type closeBuffer struct {
	bytes.Buffer
	closed bool
}

func (c *closeBuffer) Close() error { c.closed = true; return nil }
