package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// A consumer process (Config.Spawn) runs the consumer under test alone, as
// a worker runs in production: its garbage collector, scheduler and heap
// are its own, and its CPU, allocations and peak RSS are measured without
// the emulator, the load generator and the NATS server. The load side
// talks to it over its standard input and output, one JSON object per
// line: first a consumerSpec, then requests, each answered by a reply with
// the request's ID. Closing its standard input stops it.

// consumerSpec is the first line a consumer process reads.
type consumerSpec struct {
	Kind string    `json:"kind"` // worker, nats_loop, bare_loop
	Env  WorkerEnv `json:"env"`
}

// Operations a consumer process answers.
const (
	opStarted      = "started"       // reply to the spec (ID 0)
	opUsage        = "usage"         // what the process has spent so far
	opProfileStart = "profile_start" // start a CPU profile
	opProfileStop  = "profile_stop"  // stop it; the reply names the file
	opExited       = "exited"        // unasked: the consumer stopped by itself
	opStopped      = "stopped"       // unasked: the last line, after standard input closed
)

type consumerRequest struct {
	ID int    `json:"id"`
	Op string `json:"op"`
}

type consumerReply struct {
	ID      int        `json:"id"`
	Op      string     `json:"op"`
	Error   string     `json:"error,omitempty"`
	Usage   *usageWire `json:"usage,omitempty"`
	Profile string     `json:"profile,omitempty"` // a file the load side reads and deletes
}

type usageWire struct {
	CPU     time.Duration `json:"cpu_ns"`
	Mallocs uint64        `json:"mallocs"`
	MaxRSS  int64         `json:"max_rss_bytes"`
}

// requestTimeout bounds one request to a consumer process.
const requestTimeout = 30 * time.Second

func kindOf(name string) (loopKind, error) {
	for _, k := range []loopKind{loopWorker, loopNATS, loopBare} {
		if k.String() == name {
			return k, nil
		}
	}
	return 0, fmt.Errorf("bench: unknown consumer kind %q", name)
}

// ServeConsumer is the body of a consumer process (see Config.Spawn): it
// reads its spec from in, runs the consumer it names with cfg, answers
// requests on out, and stops the consumer gracefully and returns once in
// is closed. It returns the consumer's error, if it failed. Nothing else
// may write to out.
func ServeConsumer(ctx context.Context, in io.Reader, out io.Writer, cfg ConsumerConfig) error {
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var spec consumerSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("bench: consumer spec: %w", err)
	}
	kind, err := kindOf(spec.Kind)
	if err != nil {
		_ = enc.Encode(consumerReply{Op: opStarted, Error: err.Error()})
		return err
	}

	requests := make(chan consumerRequest)
	readDone := make(chan struct{})
	go func() {
		// Ends when in is closed, which is also what ends ServeConsumer.
		defer close(readDone)
		defer close(requests)
		for {
			var req consumerRequest
			if dec.Decode(&req) != nil {
				return
			}
			requests <- req
		}
	}()
	defer func() { <-readDone }()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- runConsumer(runCtx, kind, spec.Env, cfg) }()
	if err := enc.Encode(consumerReply{Op: opStarted}); err != nil {
		stop()
		<-done
		return err
	}

	var prof *os.File
	defer func() {
		if prof != nil {
			pprof.StopCPUProfile()
			_ = prof.Close()
			_ = os.Remove(prof.Name())
		}
	}()
	var runErr error
	running := true
	// finish stops the consumer if it still runs and returns how it ended.
	finish := func() error {
		if running {
			stop()
			runErr, running = <-done, false
		}
		return runErr
	}
	for {
		select {
		case err := <-done:
			// Stopped by itself: say so, then keep answering until the
			// load side closes in.
			running, runErr = false, err
			if runErr == nil {
				runErr = errors.New("the consumer returned before it was stopped")
			}
			_ = enc.Encode(consumerReply{Op: opExited, Error: runErr.Error()})
			done = nil
		case req, ok := <-requests:
			if !ok {
				reply := consumerReply{Op: opStopped}
				if err := finish(); err != nil {
					reply.Error = err.Error()
				}
				_ = enc.Encode(reply)
				return runErr
			}
			reply := consumerReply{ID: req.ID, Op: req.Op}
			switch req.Op {
			case opUsage:
				u := sampleUsage()
				reply.Usage = &usageWire{CPU: u.cpu, Mallocs: u.mallocs, MaxRSS: u.maxRSS}
			case opProfileStart:
				if prof != nil {
					reply.Error = "a profile is already running"
					break
				}
				f, err := os.CreateTemp("", "worker-bench-cpu-*.pprof")
				if err == nil {
					if err = pprof.StartCPUProfile(f); err != nil {
						_ = f.Close()
						_ = os.Remove(f.Name())
					}
				}
				if err != nil {
					reply.Error = err.Error()
					break
				}
				prof = f
			case opProfileStop:
				if prof == nil {
					reply.Error = "no profile is running"
					break
				}
				pprof.StopCPUProfile()
				if err := prof.Close(); err != nil {
					reply.Error = err.Error()
				}
				reply.Profile, prof = prof.Name(), nil
			default:
				reply.Error = fmt.Sprintf("unknown operation %q", req.Op)
			}
			if err := enc.Encode(reply); err != nil {
				// Nobody is listening any more.
				return errors.Join(err, finish())
			}
		}
	}
}

// process is a consumer in a process of its own, seen from the load side.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer // nil when the spawner took stderr

	reqMu   sync.Mutex // one request at a time
	enc     *json.Encoder
	nextID  int
	replies chan consumerReply

	done     chan struct{} // closed once the process exited and its output was read
	final    string        // the consumer's error from opExited/opStopped
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// startProcess starts a consumer process with spawn and hands it its spec.
func startProcess(ctx context.Context, spawn SpawnFunc, kind loopKind, env WorkerEnv) (*process, error) {
	cmd, err := spawn(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer process: %w", err)
	}
	p := &process{cmd: cmd, replies: make(chan consumerReply, 1), done: make(chan struct{})}
	if cmd.Stderr == nil {
		p.stderr = &tailBuffer{max: 4 << 10}
		cmd.Stderr = p.stderr
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	// A pipe of our own rather than StdoutPipe, so that reading it and
	// waiting for the process do not depend on each other.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = outW
	if err := cmd.Start(); err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return nil, fmt.Errorf("consumer process: %w", err)
	}
	_ = outW.Close()
	p.enc = json.NewEncoder(p.stdin)

	readDone := make(chan struct{})
	go p.read(outR, readDone)
	go func() {
		err := cmd.Wait()
		<-readDone
		p.waitErr = err
		close(p.done)
	}()

	if err := p.enc.Encode(consumerSpec{Kind: kind.String(), Env: env}); err != nil {
		_ = p.kill()
		return nil, fmt.Errorf("consumer process: %w", err)
	}
	if _, err := p.await(ctx, 0); err != nil {
		_ = p.kill()
		return nil, err
	}
	return p, nil
}

// read passes replies on until the process closes its output.
func (p *process) read(r io.ReadCloser, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	dec := json.NewDecoder(r)
	for {
		var m consumerReply
		if err := dec.Decode(&m); err != nil {
			return
		}
		switch m.Op {
		case opExited, opStopped:
			if m.Error != "" {
				p.final = m.Error
			}
			if m.Op == opExited {
				// Nothing more will come: let the process end.
				_ = p.stdin.Close()
			}
		default:
			select {
			case p.replies <- m:
			default: // nobody waits for it any more
			}
		}
	}
}

func (p *process) await(ctx context.Context, id int) (consumerReply, error) {
	timeout := time.NewTimer(requestTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-p.replies:
			if m.ID != id {
				continue // the late answer to a request that timed out
			}
			if m.Error != "" {
				return m, fmt.Errorf("consumer process: %s: %s", m.Op, m.Error)
			}
			return m, nil
		case <-p.done:
			return consumerReply{}, p.exitError()
		case <-ctx.Done():
			return consumerReply{}, ctx.Err()
		case <-timeout.C:
			return consumerReply{}, fmt.Errorf("consumer process: no answer within %s", requestTimeout)
		}
	}
}

func (p *process) request(ctx context.Context, op string) (consumerReply, error) {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	p.nextID++
	if err := p.enc.Encode(consumerRequest{ID: p.nextID, Op: op}); err != nil {
		// Its input is closed: it is on its way out, and how it ended
		// says more than the write error.
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-p.done:
			return consumerReply{}, p.exitError()
		case <-t.C:
			return consumerReply{}, fmt.Errorf("consumer process: %w", err)
		}
	}
	return p.await(ctx, p.nextID)
}

// exitError describes how the process ended; valid once done is closed.
func (p *process) exitError() error {
	switch {
	case p.final != "":
		return fmt.Errorf("consumer process: %s", p.final)
	case p.waitErr != nil:
		msg := "consumer process: " + p.waitErr.Error()
		if p.stderr != nil {
			if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
				msg += ": " + tail
			}
		}
		return errors.New(msg)
	}
	return errors.New("consumer process exited")
}

func (p *process) exited() <-chan struct{} { return p.done }
func (p *process) isolated() bool          { return true }

func (p *process) err() error {
	select {
	case <-p.done:
		if p.final == "" && p.waitErr == nil {
			return nil
		}
		return p.exitError()
	default:
		return nil
	}
}

func (p *process) usage(ctx context.Context) (usage, error) {
	m, err := p.request(ctx, opUsage)
	if err != nil {
		return usage{}, err
	}
	if m.Usage == nil {
		return usage{}, errors.New("consumer process: usage without figures")
	}
	return usage{at: time.Now(), cpu: m.Usage.CPU, mallocs: m.Usage.Mallocs, maxRSS: m.Usage.MaxRSS}, nil
}

func (p *process) profile(ctx context.Context, w io.WriteCloser) (func() error, error) {
	if _, err := p.request(ctx, opProfileStart); err != nil {
		_ = w.Close()
		return nil, err
	}
	return func() error {
		defer w.Close()
		m, err := p.request(context.WithoutCancel(ctx), opProfileStop)
		if err != nil {
			return err
		}
		defer os.Remove(m.Profile)
		f, err := os.Open(m.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		return w.Close()
	}, nil
}

// stop closes the process's input, which stops the consumer gracefully,
// and waits up to stopWait before killing it.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		_ = p.stdin.Close()
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-p.done:
			p.stopErr = p.err()
		case <-t.C:
			_ = p.kill()
			p.stopErr = fmt.Errorf("consumer process did not stop within %s", stopWait)
		}
	})
	return p.stopErr
}

func (p *process) kill() error {
	_ = p.cmd.Process.Kill()
	<-p.done
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
