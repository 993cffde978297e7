package emulator

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Header names the emulator reads or writes.
const (
	HeaderRequestID  = "Opc-Request-Id"
	HeaderCallID     = "Fn-Call-Id"
	HeaderInvokeType = "Fn-Invoke-Type"
	HeaderRetryAfter = "Retry-After"
)

// Buffers above this are not pooled, so one large request does not pin
// megabytes for the life of the process.
const maxPooledBuffer = 1 << 20

// Emulator is an OCI Functions invoke emulator. Create it with New; it is
// safe for concurrent use. Serve it with Start/Close, or mount Handler in
// a server of your own (then still call Close to release waiting handlers).
type Emulator struct {
	log     zerolog.Logger
	now     func() time.Time
	pub     *rsa.PublicKey
	keyID   string
	maxSkew time.Duration
	maxBody int64
	record  bool
	maxRecs int
	def     Behavior
	known   bool // Config.KnownFunctionsOnly
	handler http.Handler
	pattern []byte // one aligned block of SizedBody content, written repeatedly
	bufs    sync.Pool

	// closing is closed by Close; handlers sleeping or hanging select on it.
	closing   chan struct{}
	closeOnce sync.Once

	// mu guards everything below: counters, function state, the random
	// source (FailRatio draws must be serialised to stay reproducible) and
	// the drain bookkeeping.
	mu            sync.Mutex
	rng           *rand.Rand
	fns           map[string]*fnState
	requests      int64
	rejectedSig   int64
	rejectedLarge int64
	lookups       int64
	inFlight      int64
	maxInFlight   int64
	active        int64 // invoke handlers running, for Close to wait on
	closed        bool
	drained       chan struct{}
	drainedClosed bool

	// srvMu guards the optional server started by Start.
	srvMu  sync.Mutex
	srv    *http.Server
	addr   net.Addr
	served chan struct{} // closed when the Serve goroutine returns
}

// fnState is one function's behaviour and counters; guarded by Emulator.mu.
// States are never removed, so handlers can keep the pointer across the call.
type fnState struct {
	behavior    Behavior
	attempts    int // calls since the behaviour was set or reset, for FailFirst
	calls       int64
	inFlight    int64
	maxInFlight int64
	statuses    map[int]int64
	dropped     int64
	abandoned   int64
	records     []Call
}

// New validates cfg and returns an Emulator that is not yet listening.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		log:     cfg.Logger,
		now:     cfg.Now,
		pub:     cfg.PublicKey,
		keyID:   cfg.KeyID,
		maxSkew: cfg.MaxClockSkew,
		maxBody: cfg.MaxRequestBytes,
		record:  cfg.RecordCalls,
		maxRecs: cfg.MaxRecordedCalls,
		def:     cfg.Default,
		known:   cfg.KnownFunctionsOnly,
		rng:     cfg.Rand,
		fns:     make(map[string]*fnState, len(cfg.Functions)),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxSkew == 0 {
		e.maxSkew = DefaultMaxClockSkew
	}
	if e.maxBody == 0 {
		e.maxBody = DefaultMaxRequestBytes
	}
	if e.rng == nil {
		e.rng = rand.New(rand.NewPCG(cfg.Seed, 0))
	}
	for id, b := range cfg.Functions {
		e.fns[id] = &fnState{behavior: b, statuses: make(map[int]int64)}
	}
	e.pattern = SizedBody(26 * 1260) // ~32 KiB, a multiple of the 26-byte period
	e.bufs.New = func() any { return new(bytes.Buffer) }
	e.handler = e.routes()
	return e, nil
}

// Handler returns the emulator's HTTP handler (invoke, admin and health routes).
func (e *Emulator) Handler() http.Handler { return e.handler }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in a
// goroutine owned by the Emulator until Close. It can be called once.
func (e *Emulator) Start(addr string) (net.Addr, error) {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.srv != nil {
		return nil, errors.New("emulator: already started")
	}
	select {
	case <-e.closing:
		return nil, errors.New("emulator: closed")
	default:
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	srv := &http.Server{
		Handler: e.handler,
		// No read/write timeouts: Latency and Hang must be able to outlast
		// any client deadline. Header timeout only guards against idle sockets.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(serverLogWriter{e.log}, "", 0),
	}
	e.srv, e.addr, e.served = srv, ln.Addr(), make(chan struct{})
	go func(served chan<- struct{}) {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error().Err(err).Msg("emulator: serve failed")
		}
	}(e.served)
	e.log.Info().Str("addr", e.addr.String()).Msg("emulator: listening")
	return e.addr, nil
}

// URL is the base URL of the started server, e.g. "http://127.0.0.1:38211",
// or "" before Start.
func (e *Emulator) URL() string {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.addr == nil {
		return ""
	}
	return "http://" + e.addr.String()
}

// Close stops the emulator: new invokes get 503, sleeping and hanging
// handlers are released (their connections closed without a response), the
// server started by Start is shut down and its goroutine waited for, and
// Close waits until every invoke handler has returned. If ctx ends first,
// open connections are closed forcibly and ctx's error is returned.
// Close is idempotent.
func (e *Emulator) Close(ctx context.Context) error {
	e.closeOnce.Do(func() { close(e.closing) })
	e.mu.Lock()
	e.closed = true
	e.maybeDrainedLocked()
	e.mu.Unlock()

	e.srvMu.Lock()
	srv, served := e.srv, e.served
	e.srvMu.Unlock()

	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // ctx ended: stop waiting for connections politely
		}
		<-served // Serve returns as soon as shutdown starts
	}
	select {
	case <-e.drained:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// SetBehavior sets a function's behaviour at runtime and restarts its
// FailFirst count. Safe for concurrent use; calls already in progress keep
// the behaviour they started with.
func (e *Emulator) SetBehavior(functionID string, b Behavior) error {
	if err := validFunctionID(functionID); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	e.mu.Lock()
	st := e.stateLocked(functionID)
	st.behavior = b
	st.attempts = 0
	e.mu.Unlock()
	e.log.Info().Str("function", functionID).Stringer("behavior", b).Msg("emulator: behavior set")
	return nil
}

// BehaviorOf returns the behaviour a function currently has (Config.Default
// if it was never set).
func (e *Emulator) BehaviorOf(functionID string) Behavior {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.fns[functionID]; ok {
		return st.behavior
	}
	return e.def
}

// exists reports whether functionID is a function: any well-formed id,
// unless Config.KnownFunctionsOnly, when only those configured or given a
// behaviour are.
func (e *Emulator) exists(functionID string) bool {
	if !e.known {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.fns[functionID]
	return ok
}

// countLookup counts a GetFunction request.
func (e *Emulator) countLookup() {
	e.mu.Lock()
	e.lookups++
	e.mu.Unlock()
}

// stateLocked returns the function's state, creating it with the default
// behaviour. e.mu must be held.
func (e *Emulator) stateLocked(functionID string) *fnState {
	st, ok := e.fns[functionID]
	if !ok {
		st = &fnState{behavior: e.def, statuses: make(map[int]int64)}
		e.fns[functionID] = st
	}
	return st
}

// enter registers a running invoke handler; false once the emulator is closed.
func (e *Emulator) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.active++
	e.requests++
	return true
}

func (e *Emulator) leave() {
	e.mu.Lock()
	e.active--
	e.maybeDrainedLocked()
	e.mu.Unlock()
}

func (e *Emulator) maybeDrainedLocked() {
	if e.closed && e.active == 0 && !e.drainedClosed {
		e.drainedClosed = true
		close(e.drained)
	}
}

// sleep waits d; false if the client went away or the emulator is closing
// first. It reports which via closing.
func (e *Emulator) sleep(ctx context.Context, d time.Duration) (ok, closing bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true, false
	case <-ctx.Done():
		return false, false
	case <-e.closing:
		return false, true
	}
}

// hang waits until the client goes away or the emulator closes; it reports
// whether the emulator is closing.
func (e *Emulator) hang(ctx context.Context) (closing bool) {
	select {
	case <-ctx.Done():
		return false
	case <-e.closing:
		return true
	}
}

func (e *Emulator) getBuf() *bytes.Buffer { return e.bufs.Get().(*bytes.Buffer) }

func (e *Emulator) putBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	e.bufs.Put(b)
}

// newID returns 32 random hex characters for request and call ids. The
// runtime-seeded generator is enough: ids need to be unique, not secret.
func newID() string {
	const digits = "0123456789ABCDEF"
	var out [32]byte
	for i := 0; i < len(out); i += 16 {
		v := rand.Uint64()
		for j := 0; j < 16; j++ {
			out[i+j] = digits[v&0xf]
			v >>= 4
		}
	}
	return string(out[:])
}

// serverLogWriter routes net/http's own error log into zerolog.
type serverLogWriter struct{ log zerolog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
