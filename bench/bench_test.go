package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/bench"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// runWorker wires the worker as service.Run does (state
// store, stored results, metrics, breaker defaults, API-key signing),
// without the configuration file and the admin endpoint.
func runWorker(ctx context.Context, env bench.WorkerEnv) error {
	nc, err := queue.Connect(ctx, queue.ConnConfig{URLs: env.NATSURL})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := env.Topology
	cons, err := queue.Ensure(ctx, js, topo)
	if err != nil {
		return err
	}
	state, err := queue.EnsureStateStore(ctx, js, env.StateBucket, time.Hour, 1)
	if err != nil {
		return err
	}
	results, err := js.Stream(ctx, topo.ResultsStream)
	if err != nil {
		return err
	}
	auth := invoke.OCIAuth{Mode: invoke.AuthNone}
	if env.Signed() {
		auth = invoke.OCIAuth{Mode: invoke.AuthAPIKey, ConfigFile: env.OCIConfigFile, Profile: env.OCIProfile}
	}
	signer, err := invoke.NewOCISigner(auth)
	if err != nil {
		return err
	}
	client, err := invoke.New(invoke.Config{
		Resolver: invoke.StaticEndpoints{env.FunctionID: env.Endpoint},
		Signer:   signer,
		MaxConns: env.Concurrency,
	})
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	log := zerolog.Nop()
	w, err := worker.New(worker.Config{
		ID:            "bench-test",
		Concurrency:   env.Concurrency,
		ResultsStream: topo.ResultsStream,
		ResultsPrefix: topo.ResultsPrefix,
		Metrics:       prometheus.NewRegistry(),
		Logger:        &log,
	}, worker.Deps{
		Consumer:      func(context.Context) (jetstream.Consumer, error) { return cons, nil },
		State:         state,
		StoredResults: results,
		Invoker:       client,
		Results:       js,
		DeadLetters:   dlq.NewWriter(js, topo.DLQStream, topo.DLQPrefix),
		Replies:       nc,
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestRunReportIsCompleteAndConsistent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unsigned bool
		latency  time.Duration
	}{
		{"unsigned", true, 10 * time.Millisecond},
		{"signed", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const jobs = 200
			rep, err := bench.Run(testContext(t), bench.Config{
				Worker:       runWorker,
				Jobs:         jobs,
				Warmup:       20,
				Concurrency:  16,
				Latency:      tc.latency,
				Unsigned:     tc.unsigned,
				Ceilings:     true,
				SignDuration: 100 * time.Millisecond,
				Timeout:      time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Settings.Signed == tc.unsigned || rep.Settings.Jobs != jobs || rep.Settings.Warmup != 20 {
				t.Errorf("settings %+v", rep.Settings)
			}
			if rep.Machine.CPUs < 1 || rep.Machine.GOMAXPROCS < 1 || rep.Machine.GoVersion == "" {
				t.Errorf("machine %+v", rep.Machine)
			}
			if rep.Ceilings == nil || rep.Ratios == nil {
				t.Fatal("ceilings or ratios missing")
			}
			c := rep.Ceilings
			for _, m := range []bench.Measurement{rep.Worker, c.NATSLoop, c.HTTPSigned, c.HTTPUnsigned, c.BareLoop} {
				checkMeasurement(t, m, jobs)
			}
			for _, m := range []bench.Measurement{rep.Worker, c.NATSLoop, c.BareLoop} {
				checkAdded(t, m, tc.latency)
			}
			if c.Signing.Jobs < 1 || c.Signing.PerSecond <= 0 {
				t.Errorf("signing %+v", c.Signing)
			}
			r := rep.Ratios
			if want := rep.Worker.PerSecond / c.BareLoop.PerSecond; r.BareLoop != want || want <= 0 {
				t.Errorf("ratio to bare loop %g, want %g", r.BareLoop, want)
			}
			if want := rep.Worker.PerSecond / c.Signing.PerSecond; r.Signing != want || want <= 0 {
				t.Errorf("ratio to signing %g, want %g", r.Signing, want)
			}
			if want := rep.Worker.CPUPer1000 / c.BareLoop.CPUPer1000; r.CPUPerJob != want || want <= 0 {
				t.Errorf("CPU per job ratio %g, want %g", r.CPUPerJob, want)
			}
			if r.Target != bench.TargetRatio {
				t.Errorf("target %g", r.Target)
			}
			checkRendering(t, rep)
		})
	}
}

func checkMeasurement(t *testing.T, m bench.Measurement, jobs int) {
	t.Helper()
	if m.Name == "" || m.Jobs != jobs || m.Seconds <= 0 || m.PerSecond <= 0 {
		t.Errorf("%s: counts %+v", m.Name, m)
	}
	if m.CPUPer1000 <= 0 || m.AllocsPerJob <= 0 || m.PeakRSS <= 0 || m.PeakRSSScope == "" {
		t.Errorf("%s: usage %+v", m.Name, m)
	}
	if m.Duplicates != 0 {
		t.Errorf("%s: %d duplicate results", m.Name, m.Duplicates)
	}
	checkOrdered(t, m.Name+" end-to-end", m.EndToEnd)
}

// checkAdded: the added latency is the end-to-end latency minus at least
// the function's latency, job by job, so every percentile is lower by at
// least that much.
func checkAdded(t *testing.T, m bench.Measurement, fnLatency time.Duration) {
	t.Helper()
	checkOrdered(t, m.Name+" added", m.Added)
	if m.Added == nil || m.EndToEnd == nil {
		return
	}
	e, a := m.EndToEnd, m.Added
	if strings.Contains(m.Name, "NATS-only") {
		fnLatency = 0 // no function at all
	}
	for _, p := range [][2]time.Duration{{e.P50, a.P50}, {e.P95, a.P95}, {e.P99, a.P99}, {e.Max, a.Max}} {
		if p[0]-p[1] < fnLatency {
			t.Errorf("%s: end-to-end %s, added %s: the function's %s not taken out", m.Name, p[0], p[1], fnLatency)
		}
	}
}

func checkOrdered(t *testing.T, what string, l *bench.Latency) {
	t.Helper()
	if l == nil {
		t.Errorf("%s: no latency", what)
		return
	}
	if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: percentiles out of order: %+v", what, *l)
	}
}

func checkRendering(t *testing.T, rep bench.Report) {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{rep.Worker.Name, "(a) NATS-only loop", "(b) RSA-2048 signing", "(c) HTTP only, signed", "(d) bare loop", "worker ÷ (d) bare loop", "machine:"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Worker.Jobs != rep.Worker.Jobs || back.Ratios == nil || back.Ratios.BareLoop != rep.Ratios.BareLoop ||
		back.Worker.EndToEnd == nil || back.Worker.EndToEnd.Max.Round(time.Microsecond) != rep.Worker.EndToEnd.Max.Round(time.Microsecond) {
		t.Errorf("JSON does not round-trip:\n%s", b.String())
	}
}

// Several rounds alternate the worker and (d); the ratio is the median of
// the rounds'.
func TestRunRoundsReportTheMedianRatio(t *testing.T) {
	rep, err := bench.Run(testContext(t), bench.Config{
		Worker:       runWorker,
		Jobs:         100,
		Concurrency:  8,
		Unsigned:     true,
		Ceilings:     true,
		Rounds:       3,
		SignDuration: 50 * time.Millisecond,
		Timeout:      time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Ratios
	if r == nil || len(r.Rounds) != 3 || rep.Settings.Rounds != 3 {
		t.Fatalf("ratios %+v", r)
	}
	s := slices.Clone(r.Rounds)
	slices.Sort(s)
	if r.BareLoop != s[1] {
		t.Errorf("ratio %g, want the median of %v", r.BareLoop, r.Rounds)
	}
	checkMeasurement(t, rep.Worker, 100)
	checkMeasurement(t, rep.Ceilings.BareLoop, 100)
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "median of 3 rounds") {
		t.Errorf("table does not show the rounds:\n%s", b.String())
	}
}

// On an existing server the bench uses streams of its own and deletes
// them afterwards.
func TestRunOnExternalServerCleansUp(t *testing.T) {
	srv, err := queue.StartEmbedded(queue.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := testContext(t)
	rep, err := bench.Run(ctx, bench.Config{
		Worker:      runWorker,
		NATSURL:     srv.ClientURL(),
		Jobs:        100,
		Concurrency: 8,
		Unsigned:    true,
		Timeout:     time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkMeasurement(t, rep.Worker, 100)
	if rep.Settings.NATS != "external" || rep.Ceilings != nil || rep.Ratios != nil {
		t.Errorf("report %+v", rep)
	}
	nc, err := queue.Connect(ctx, queue.ConnConfig{URLs: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	var left []string
	for n := range names.Name() {
		left = append(left, n)
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("streams left behind: %v", left)
	}
}

func TestRunStopsOnTimeout(t *testing.T) {
	// A worker that never consumes: the measurement must end by itself.
	idle := func(ctx context.Context, _ bench.WorkerEnv) error { <-ctx.Done(); return nil }
	start := time.Now()
	_, err := bench.Run(testContext(t), bench.Config{Worker: idle, Jobs: 10, Unsigned: true, Timeout: time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := bench.Config{Worker: runWorker}
	for _, tc := range []struct {
		name    string
		mod     func(*bench.Config)
		wantErr string
	}{
		{"defaults", func(*bench.Config) {}, ""},
		{"no worker", func(c *bench.Config) { c.Worker = nil }, "Worker"},
		{"negative jobs", func(c *bench.Config) { c.Jobs = -1 }, "Jobs"},
		{"negative rate", func(c *bench.Config) { c.Rate = -1 }, "Rate"},
		{"huge body", func(c *bench.Config) { c.BodySize = 7 << 20 }, "BodySize"},
		{"negative latency", func(c *bench.Config) { c.Latency = -time.Second }, "Latency"},
		{"bad function", func(c *bench.Config) { c.FunctionID = "nope" }, "FunctionID"},
		{"short timeout", func(c *bench.Config) { c.Timeout = time.Millisecond }, "Timeout"},
		{"no rounds", func(c *bench.Config) { c.Rounds = -1 }, "Rounds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := bench.Config{}.WithDefaults()
	if c.Jobs != bench.JobsDefault || c.Warmup != 500 || c.Concurrency != 64 || c.BodySize != 1024 || c.ResponseSize != 0 {
		t.Errorf("defaults %+v", c)
	}
	if c := (bench.Config{BodySize: -1, Warmup: -1}).WithDefaults(); c.BodySize != 0 || c.Warmup != -1 {
		t.Errorf("empty body / no warm-up: %+v", c)
	}
}
