package bench

import (
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/gcfloor"
	"github.com/invoke-worker/worker/job"
)

func TestLatencyOfIsNearestRank(t *testing.T) {
	ds := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(ds)
	want := Latency{P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if *l != want {
		t.Errorf("got %+v, want %+v", *l, want)
	}
	if one := latencyOf([]time.Duration{7}); *one != (Latency{7, 7, 7, 7}) {
		t.Errorf("one sample: %+v", *one)
	}
	if latencyOf(nil) != nil {
		t.Error("no samples must give nil")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		250 * time.Microsecond:  "250µs",
		2500 * time.Microsecond: "2.5ms",
		25 * time.Millisecond:   "25ms",
		2500 * time.Millisecond: "2.50s",
		25 * time.Second:        "25.0s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestConcreteSubject(t *testing.T) {
	for in, want := range map[string]string{
		"invoke.jobs.>":         "invoke.jobs.bench",
		"bench.X_1.jobs.>":      "bench.X_1.jobs.bench",
		"a.*.b":                 "a.bench.b",
		"invoke.jobs.nightly.x": "invoke.jobs.nightly.x",
	} {
		if got := concreteSubject(in); got != want {
			t.Errorf("concreteSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

// The bare loop publishes the result the contract requires, with every
// header the worker sets on a first-attempt success, so that it is a
// ceiling for the same job and not for a smaller message.
func TestBareLoopResultIsTheContracts(t *testing.T) {
	a := answer{status: 200, body: []byte("hi"), contentType: "text/plain", opcRequestID: "r-1", callID: "c1", took: 3 * time.Millisecond}
	m := a.message("invoke.results", "j1", "ocid1.fnfunc.oc1.phx.aaaa")
	if m.Subject != "invoke.results.j1" || string(m.Data) != "hi" {
		t.Fatalf("subject %q, data %q", m.Subject, m.Data)
	}
	want := map[string]string{
		job.HeaderMsgID: "j1", job.HeaderJobID: "j1", job.HeaderFunctionID: "ocid1.fnfunc.oc1.phx.aaaa",
		job.HeaderStatus: "200", job.HeaderAttempts: "1", job.HeaderDurationMs: "3",
		job.HeaderOpcRequestID: "r-1", job.HeaderFnCallID: "c1", job.HeaderContentType: "text/plain",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(job.TimeFormatMillis, m.Header.Get(job.HeaderCompletedAt)); err != nil {
		t.Errorf("%s: %v", job.HeaderCompletedAt, err)
	}
	if len(m.Header) != len(want)+1 {
		t.Errorf("headers %v", m.Header)
	}
}

// Large bodies leave fewer publishes outstanding: 1,024 bodies of 1 MiB
// would be refused by the server.
func TestMaxPendingBoundsBytes(t *testing.T) {
	for _, tc := range []struct{ body, pending, want int }{
		{1024, 1024, 1024},
		{1 << 20, 1024, MaxPendingBytes >> 20},
		{6 << 20, 1024, 10},
		{0, 7, 7},
		{128 << 20, 1024, 1},
	} {
		c := Config{BodySize: tc.body, MaxPending: tc.pending}
		if got := c.maxPending(); got != tc.want {
			t.Errorf("body %d, max pending %d: %d, want %d", tc.body, tc.pending, got, tc.want)
		}
	}
}

// During a measured window of an isolated run the load side holds its
// collector off up to LoadMemoryLimit, and puts both settings back after.
// Not parallel: GOGC and the memory limit are process-wide.
func TestHoldGCHoldsTheCollectorAndRestoresIt(t *testing.T) {
	percent := debug.SetGCPercent(150)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	r := &runner{cfg: Config{LoadMemoryLimit: 1 << 30}}
	restore := r.holdGC()
	if p := gcfloor.GOGC(); p != -1 {
		t.Errorf("GOGC %d during the window, want off", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 1<<30 {
		t.Errorf("memory limit %d during the window, want 1 GiB", l)
	}
	restore()
	if p, l := gcfloor.GOGC(), debug.SetMemoryLimit(-1); p != 150 || l != math.MaxInt64 {
		t.Errorf("after the window GOGC %d, limit %d; want 150 and no limit", p, l)
	}

	r.cfg.LoadMemoryLimit = -1 // leaves the collector alone
	r.holdGC()()
	if p := gcfloor.GOGC(); p != 150 {
		t.Errorf("LoadMemoryLimit -1 changed GOGC to %d", p)
	}
}
