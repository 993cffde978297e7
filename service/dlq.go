// Opening the dead-letter stream for the `worker dlq` commands.

package service

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/queue"
)

// DLQSession is a connected dead-letter store and what it needs to be closed.
type DLQSession struct {
	Store *dlqops.Store
	Topo  queue.Topology
	Log   zerolog.Logger
	Close func()
}

// OpenDLQ connects a `worker dlq` command to the dead-letter stream
// cfg names, logging with log, and looks the streams up; it creates
// nothing.
func OpenDLQ(ctx context.Context, cfg config.Config, log zerolog.Logger) (*DLQSession, error) {
	// Connection chatter (a clean disconnect at exit is logged at info)
	// is noise around a command's output; problems are warnings.
	nc, js, err := Connect(ctx, cfg, log.Level(max(log.GetLevel(), zerolog.WarnLevel)))
	if err != nil {
		return nil, err
	}
	topo := Topology(cfg)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := queue.CheckStreams(sctx, js, topo); err != nil {
		nc.Close()
		return nil, err
	}
	store, err := dlqops.NewStore(sctx, js, dlqops.StoreConfig{
		Stream:        topo.DLQStream,
		Prefix:        topo.DLQPrefix,
		JobsStream:    topo.JobsStream,
		ResultsStream: topo.ResultsStream,
		ResultsPrefix: topo.ResultsPrefix,
		RequestLimit:  int64(cfg.Invoke.RequestLimit),
		Logger:        &log,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &DLQSession{Store: store, Topo: topo, Log: log, Close: nc.Close}, nil
}
