package bench

import (
	"testing"
	"time"
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
