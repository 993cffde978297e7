// The service as `worker bench` runs it.

package service

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/bench"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/invoke"
)

// BenchWorker runs the service (Run) against what the
// bench prepared: its NATS, streams and consumer, the emulator as the one
// function's endpoint, and its API key (or none, unsigned). Everything
// else comes from the loaded configuration, as for `worker run`.
func BenchWorker(base config.Config, log zerolog.Logger, opt Options) bench.WorkerFunc {
	return func(ctx context.Context, env bench.WorkerEnv) error {
		c := base // maps and slices below are replaced, never modified
		c.NATS.URL = env.NATSURL
		t := env.Topology
		c.Streams.Jobs, c.Streams.Results, c.Streams.DLQ = t.JobsStream, t.ResultsStream, t.DLQStream
		c.Streams.JobsSubjects = t.JobsSubjects
		c.Streams.ResultsPrefix, c.Streams.DLQPrefix = t.ResultsPrefix, t.DLQPrefix
		c.Streams.State = env.StateBucket
		c.Consumer.Durable = t.Durable
		c.Worker.Concurrency = env.Concurrency
		c.Invoke.Endpoints = map[string]string{env.FunctionID: env.Endpoint}
		c.Invoke.OCI = config.OCI{Auth: invoke.AuthNone}
		if env.Signed() {
			c.Invoke.OCI = config.OCI{Auth: invoke.AuthAPIKey, ConfigFile: env.OCIConfigFile, Profile: env.OCIProfile}
		}
		return Run(ctx, c, log, opt)
	}
}
