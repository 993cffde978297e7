package main

import (
	"os"

	"github.com/invoke-worker/worker/service"
	"github.com/spf13/cobra"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the worker (embedded NATS when no URL is configured)",
		Long: `Run the worker: take jobs from the shared durable consumer, invoke the
functions, publish results or dead-letter records. Without a NATS URL it
starts an embedded NATS server with JetStream (data under ./data) and says so.
SIGINT/SIGTERM stop it gracefully; a second signal exits at once.`,
	}
	cmd.Flags().String("http", "", "admin endpoint address (config http.listen; empty string turns it off)")
	cmd.Flags().Int("concurrency", 0, "invocations in flight (config worker.concurrency)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		extra := flagOverride(cmd, "http", "http.listen")
		extra = append(extra, flagOverride(cmd, "concurrency", "worker.concurrency")...)
		cfg, err := loadConfig(g, extra...)
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, os.Stderr)
		ctx, stop := signalContext(cmd.Context(), log)
		defer stop()
		defer startGCFloor(cfg.Worker)()
		return service.Run(ctx, cfg, log, service.Options{Version: version()})
	}
	return cmd
}
