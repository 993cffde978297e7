// The defaults of every key, derived from the libraries that own them.

package config

import (
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/tracing"
	"github.com/invoke-worker/worker/worker"
)

// Default returns the default configuration. Each call returns fresh maps
// and slices, so callers may modify the result.
//
// The defaults of settings the libraries own come from them: stream and
// NATS defaults from queue, invocation and retry rules from invoke, the
// engine's from worker. Only what exists in configuration alone (file
// locations, the admin endpoint, logging, the emulator) is written here.
func Default() Config {
	topo := queue.DefaultTopology()
	retry := worker.DefaultRetryConfig()
	breaker := worker.DefaultBreakerConfig()
	return Config{
		NATS: NATS{
			Name:           queue.ConnNameDefault,
			InboxPrefix:    queue.InboxPrefixDefault,
			ConnectTimeout: queue.ConnectTimeoutDefault,
			ReconnectWait:  queue.ReconnectWaitDefault,
			Embedded: Embedded{
				Listen:     queue.EmbeddedListenDefault,
				StoreDir:   "./data/nats",
				MaxPayload: queue.MaxPayloadDefault,
			},
		},
		Streams: Streams{
			Jobs:            topo.JobsStream,
			Results:         topo.ResultsStream,
			DLQ:             topo.DLQStream,
			JobsSubjects:    topo.JobsSubjects,
			ResultsPrefix:   topo.ResultsPrefix,
			DLQPrefix:       topo.DLQPrefix,
			WaitPrefix:      topo.WaitPrefix,
			Replicas:        topo.Replicas,
			Manage:          true,
			MaxMsgSize:      Size(topo.MaxMsgSize),
			JobsMaxAge:      topo.JobsMaxAge,
			ResultsMaxAge:   topo.ResultsMaxAge,
			DLQMaxAge:       topo.DLQMaxAge,
			DuplicateWindow: topo.DuplicateWindow,
			State:           queue.StateBucketDefault,
			StateMaxAge:     queue.StateMaxAgeDefault,
			JobBodies:       topo.JobBodies,
			ResultBodies:    topo.ResultBodies,
		},
		Consumer: Consumer{
			Durable:       topo.Durable,
			AckWait:       topo.AckWait,
			MaxAckPending: topo.MaxAckPending,
		},
		Worker: Worker{
			Concurrency:      worker.ConcurrencyDefault,
			DrainTimeout:     worker.DrainTimeoutDefault,
			ProgressInterval: worker.ProgressIntervalDefault,
			GCMinHeap:        32 * MiB,
			PullMaxBytes:     worker.PullMaxBytesDefault,
			FairShare:        true,
			ReservedShare:    1.0 / worker.ReservedSlotsDivisor,
			MetricFunctions:  worker.MetricFunctionsDefault,
			WaitLogThreshold: worker.WaitLogThresholdDefault,
			SampleInterval:   worker.SampleIntervalDefault,
		},
		Invoke: Invoke{
			APIVersion:    invoke.APIVersionDefault,
			RequestLimit:  invoke.RequestLimitDefault,
			ResponseLimit: invoke.ResponseLimitDefault,
			Timeout: InvokeTimeout{
				Connect: invoke.ConnectTimeoutDefault,
				Read:    invoke.ReadTimeoutDefault,
			},
			Endpoints: map[string]string{},
			OCI: OCI{
				Auth:       invoke.AuthAPIKey,
				ConfigFile: invoke.OCIConfigFileDefault,
				Profile:    invoke.OCIProfileDefault,
			},
		},
		Retry: Retry{
			MaxAttempts:     retry.MaxAttempts,
			InitialInterval: retry.InitialInterval,
			MaxInterval:     retry.MaxInterval,
			Multiplier:      retry.Multiplier,
			MaxElapsed:      retry.MaxElapsed,
			Randomization:   retry.Randomization,
			On:              invoke.RetryOnDefault(),
			Never:           []string{},
		},
		Breaker: Breaker{
			Mode:             breaker.Mode,
			FailureRatio:     breaker.FailureRatio,
			MinRequests:      breaker.MinRequests,
			Interval:         breaker.Interval,
			OpenTimeout:      breaker.OpenTimeout,
			HalfOpenRequests: breaker.HalfOpenRequests,
		},
		HTTP: HTTP{Listen: "127.0.0.1:9090"},
		Log:  Log{Level: "info", Format: "json"},
		Tracing: Tracing{
			Exporter:    tracing.ExporterDefault,
			SampleRatio: tracing.SampleRatioDefault,
		},
		Emulator: Emulator{
			Listen:    "127.0.0.1:8080",
			Default:   "echo",
			Functions: map[string]string{},
		},
		Routes: []Route{},
	}
}
