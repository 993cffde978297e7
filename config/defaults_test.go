package config

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/tracing"
	"github.com/invoke-worker/worker/worker"
)

// TestShippedConfigRetriesATimeout: with configs/worker.yaml as shipped, an
// attempt that times out (a real one: the emulator never answers) is
// retryable under the retry policy the worker builds from retry.on and
// retry.never, as the README and the contract say.
func TestShippedConfigRetriesATimeout(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, LoadOptions{File: "../configs/worker.yaml", Environ: []string{}})
	policy, err := invoke.NewRetryPolicy(cfg.Retry.On, cfg.Retry.Never)
	if err != nil {
		t.Fatal(err)
	}
	const fn = "ocid1.fnfunc.oc1.phx.aaaaaaaahang"
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{fn: {Hang: true}})
	client, err := invoke.New(invoke.Config{
		Resolver:    invoke.StaticEndpoints{fn: emu.URL()},
		Signer:      testenv.Signer(t, creds),
		ReadTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	resp, err := client.Invoke(ctx, invoke.Request{FunctionID: fn, Body: []byte("x")})
	resp.Release()
	if !errors.Is(err, invoke.ErrTimeout) {
		t.Fatalf("Invoke: %v, want a timeout", err)
	}
	if !policy.Retryable(err) {
		t.Fatalf("a timeout is not retried with the shipped retry.on %q and retry.never %q", cfg.Retry.On, cfg.Retry.Never)
	}
}

// TestRetryRulesUseInvokesGrammar: a rule is valid in retry.on and
// retry.never exactly when the invoke package, which applies the rules,
// accepts it.
func TestRetryRulesUseInvokesGrammar(t *testing.T) {
	t.Parallel()
	for _, rule := range []string{
		"network", "timeout", "429", "100", "599", "409/IncorrectState", "*/TooManyRequests", "502/A.b-c_9",
		"NETWORK", " network", "sometimes", "0500", "+500", "5xx", "600", "99", "409/", "*", "*/", "/Code", "502/Bad Code", "502/Bad/Code", "",
	} {
		c := Default()
		c.Retry.Never = []string{rule}
		cfgErr := c.Validate()
		_, invErr := invoke.NewRetryPolicy(nil, []string{rule})
		if (cfgErr == nil) != (invErr == nil) {
			t.Errorf("rule %q: config says %v, invoke says %v", rule, cfgErr, invErr)
		}
	}
}

// TestWorkerYAMLSetsEveryKeyToItsDefault reads configs/worker.yaml onto an
// empty configuration, not onto the defaults, so that every key must be in
// the file with its default value.
func TestWorkerYAMLSetsEveryKeyToItsDefault(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../configs/worker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file Config
	if errs := decodeYAML(data, "worker.yaml", &file); len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	def := Default()
	for _, l := range leaves() {
		got := reflect.ValueOf(file).FieldByIndex(l.index).Interface()
		want := reflect.ValueOf(def).FieldByIndex(l.index).Interface()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("configs/worker.yaml: %s is %v, the default is %v", l.key, got, want)
		}
	}
	if len(file.Routes) != 0 {
		t.Errorf("configs/worker.yaml: routes %v, the default is none", file.Routes)
	}
}

// TestDefaultsAreTheLibraries: every default of a setting a library owns is
// the library's own (queue: streams and NATS; invoke: invocation, retry
// rules; worker: the engine). The rest exist in configuration only.
func TestDefaultsAreTheLibraries(t *testing.T) {
	t.Parallel()
	c := Default()
	topo := queue.DefaultTopology()
	retry, breaker := worker.DefaultRetryConfig(), worker.DefaultBreakerConfig()
	var zero worker.Config // fields whose library default is zero: off, or unlimited
	libraries := map[string][2]any{
		"nats.name":                       {c.NATS.Name, queue.ConnNameDefault},
		"nats.connect_timeout":            {c.NATS.ConnectTimeout, queue.ConnectTimeoutDefault},
		"nats.reconnect_wait":             {c.NATS.ReconnectWait, queue.ReconnectWaitDefault},
		"nats.embedded.listen":            {c.NATS.Embedded.Listen, queue.EmbeddedListenDefault},
		"nats.embedded.max_payload":       {int64(c.NATS.Embedded.MaxPayload), int64(queue.MaxPayloadDefault)},
		"streams.jobs":                    {c.Streams.Jobs, topo.JobsStream},
		"streams.results":                 {c.Streams.Results, topo.ResultsStream},
		"streams.dlq":                     {c.Streams.DLQ, topo.DLQStream},
		"streams.jobs_subjects":           {c.Streams.JobsSubjects, topo.JobsSubjects},
		"streams.results_prefix":          {c.Streams.ResultsPrefix, topo.ResultsPrefix},
		"streams.dlq_prefix":              {c.Streams.DLQPrefix, topo.DLQPrefix},
		"streams.wait_prefix":             {c.Streams.WaitPrefix, topo.WaitPrefix},
		"streams.replicas":                {c.Streams.Replicas, topo.Replicas},
		"streams.max_msg_size":            {int64(c.Streams.MaxMsgSize), int64(topo.MaxMsgSize)},
		"streams.jobs_max_age":            {c.Streams.JobsMaxAge, topo.JobsMaxAge},
		"streams.results_max_age":         {c.Streams.ResultsMaxAge, topo.ResultsMaxAge},
		"streams.dlq_max_age":             {c.Streams.DLQMaxAge, topo.DLQMaxAge},
		"streams.duplicate_window":        {c.Streams.DuplicateWindow, topo.DuplicateWindow},
		"streams.state":                   {c.Streams.State, queue.StateBucketDefault},
		"streams.state_max_age":           {c.Streams.StateMaxAge, queue.StateMaxAgeDefault},
		"streams.job_bodies":              {c.Streams.JobBodies, topo.JobBodies},
		"streams.result_bodies":           {c.Streams.ResultBodies, topo.ResultBodies},
		"consumer.durable":                {c.Consumer.Durable, topo.Durable},
		"consumer.ack_wait":               {c.Consumer.AckWait, topo.AckWait},
		"consumer.max_ack_pending":        {c.Consumer.MaxAckPending, topo.MaxAckPending},
		"consumer.update":                 {c.Consumer.Update, queue.ConsumerPolicy{}.Update},
		"worker.concurrency":              {c.Worker.Concurrency, worker.ConcurrencyDefault},
		"worker.drain_timeout":            {c.Worker.DrainTimeout, worker.DrainTimeoutDefault},
		"worker.max_job_age":              {c.Worker.MaxJobAge, zero.MaxJobAge},
		"worker.per_function_concurrency": {c.Worker.PerFunctionConcurrency, zero.PerFunctionConcurrency},
		"worker.per_function_rate":        {c.Worker.PerFunctionRate, zero.PerFunctionRate},
		"worker.progress_interval":        {c.Worker.ProgressInterval, worker.ProgressIntervalDefault},
		"worker.prefetch":                 {c.Worker.Prefetch, zero.Prefetch},
		"worker.pull_max_bytes":           {int64(c.Worker.PullMaxBytes), int64(worker.PullMaxBytesDefault)},
		"worker.fair_share":               {c.Worker.FairShare, !zero.NoFairShare},
		"worker.reserved_share":           {c.Worker.ReservedShare, 1.0 / worker.ReservedSlotsDivisor},
		"worker.metric_functions":         {c.Worker.MetricFunctions, worker.MetricFunctionsDefault},
		"worker.wait_log_threshold":       {c.Worker.WaitLogThreshold, worker.WaitLogThresholdDefault},
		"worker.sample_interval":          {c.Worker.SampleInterval, worker.SampleIntervalDefault},
		"invoke.api_version":              {c.Invoke.APIVersion, invoke.APIVersionDefault},
		"invoke.request_limit":            {int64(c.Invoke.RequestLimit), int64(invoke.RequestLimitDefault)},
		"invoke.response_limit":           {int64(c.Invoke.ResponseLimit), int64(invoke.ResponseLimitDefault)},
		"nats.inbox_prefix":               {c.NATS.InboxPrefix, queue.InboxPrefixDefault},
		"invoke.timeout.connect":          {c.Invoke.Timeout.Connect, invoke.ConnectTimeoutDefault},
		"invoke.timeout.read":             {c.Invoke.Timeout.Read, invoke.ReadTimeoutDefault},
		"invoke.timeout.total":            {c.Invoke.Timeout.Total, invoke.Config{}.TotalTimeout},
		"invoke.oci.auth":                 {c.Invoke.OCI.Auth, invoke.AuthAPIKey},
		"invoke.oci.config_file":          {c.Invoke.OCI.ConfigFile, invoke.OCIConfigFileDefault},
		"invoke.oci.profile":              {c.Invoke.OCI.Profile, invoke.OCIProfileDefault},
		"retry.max_attempts":              {c.Retry.MaxAttempts, retry.MaxAttempts},
		"retry.initial_interval":          {c.Retry.InitialInterval, retry.InitialInterval},
		"retry.max_interval":              {c.Retry.MaxInterval, retry.MaxInterval},
		"retry.multiplier":                {c.Retry.Multiplier, retry.Multiplier},
		"retry.max_elapsed":               {c.Retry.MaxElapsed, retry.MaxElapsed},
		"retry.randomization":             {c.Retry.Randomization, retry.Randomization},
		"retry.on":                        {c.Retry.On, invoke.RetryOnDefault()},
		"retry.never":                     {c.Retry.Never, []string{}},
		"breaker.mode":                    {c.Breaker.Mode, breaker.Mode},
		"breaker.failure_ratio":           {c.Breaker.FailureRatio, breaker.FailureRatio},
		"breaker.min_requests":            {c.Breaker.MinRequests, breaker.MinRequests},
		"breaker.interval":                {c.Breaker.Interval, breaker.Interval},
		"breaker.open_timeout":            {c.Breaker.OpenTimeout, breaker.OpenTimeout},
		"breaker.half_open_requests":      {c.Breaker.HalfOpenRequests, breaker.HalfOpenRequests},
		"tracing.exporter":                {c.Tracing.Exporter, tracing.ExporterDefault},
		"tracing.endpoint":                {c.Tracing.Endpoint, tracing.Config{}.Endpoint},
		"tracing.sample_ratio":            {c.Tracing.SampleRatio, tracing.SampleRatioDefault},
	}
	configOnly := []string{
		"nats.url", "nats.creds", "nats.nkey", "nats.user", "nats.password", "nats.token", "nats.password_file", "nats.token_file", "streams.manage",
		"nats.tls.ca", "nats.tls.cert", "nats.tls.key", "nats.embedded.store_dir",
		"worker.id", "worker.gc_min_heap", "invoke.endpoints", "invoke.management_endpoint", "invoke.oci.passphrase", "invoke.oci.passphrase_file",
		"http.listen", "http.pprof", "http.token_file", "log.level", "log.format",
		"emulator.listen", "emulator.public_key", "emulator.default", "emulator.functions", "emulator.record_calls", "routes",
	}
	for _, k := range Keys() {
		pair, ok := libraries[k]
		switch {
		case ok:
			if !reflect.DeepEqual(pair[0], pair[1]) {
				t.Errorf("%s: the configuration's default is %v, the library's %v", k, pair[0], pair[1])
			}
		case !slices.Contains(configOnly, k):
			t.Errorf("%s: say where its default comes from (a library, or the configuration only)", k)
		}
	}
}

// TestExplicitZeroSurvivesEverySource: a documented 0 (unlimited, no
// limit) given in the file, the environment or an override is kept, not
// replaced by the default.
func TestExplicitZeroSurvivesEverySource(t *testing.T) {
	t.Parallel()
	keys := []string{"streams.results_max_age", "streams.dlq_max_age", "retry.max_elapsed"}
	check := func(source string, cfg Config) {
		t.Helper()
		if cfg.Streams.ResultsMaxAge != 0 || cfg.Streams.DLQMaxAge != 0 || cfg.Retry.MaxElapsed != 0 {
			t.Errorf("%s: 0 replaced: results_max_age %s, dlq_max_age %s, max_elapsed %s",
				source, cfg.Streams.ResultsMaxAge, cfg.Streams.DLQMaxAge, cfg.Retry.MaxElapsed)
		}
	}
	file := writeFile(t, "streams:\n  results_max_age: 0s\n  dlq_max_age: 0\nretry:\n  max_elapsed: 0s\n")
	check("file", mustLoad(t, LoadOptions{File: file}))
	var env []string
	var overrides []Override
	for _, k := range keys {
		env = append(env, EnvName(k)+"=0s")
		overrides = append(overrides, Override{Key: k, Value: "0"})
	}
	check("environment", mustLoad(t, LoadOptions{Environ: env}))
	check("overrides", mustLoad(t, LoadOptions{Overrides: overrides}))
}
