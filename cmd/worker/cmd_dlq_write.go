package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/dlqview"
	"github.com/invoke-worker/worker/internal/render"
)

func newDlqReplayCmd(g *globalFlags) *cobra.Command {
	var (
		ff                       filterFlags
		all, dryRun, keep, watch bool
		rate, maxFailureRatio    float64
		toFunction               string
		minSample                int
		watchTimeout             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replay (SEQ... | --all) [filters]",
		Short: "Republish dead-lettered jobs to their original subject, then delete the records",
		Long: `Republish each selected record's job to its original subject with its original
headers, body and job id (dead-letter headers removed, Invoke-Replay-Count
added), and delete the record once JetStream acknowledged the job (--keep
leaves it). A replayed job is a new message: it gets a fresh retry budget.

Safe to interrupt and run again: each job carries a Nats-Msg-Id derived from
the record (replay-INVOKE_DLQ-<seq>), and a marker in the KV bucket
INVOKE_DLQ_REPLAYS remembers every replayed record, so running a replay again
does not enqueue a job twice (docs/operations.md, "Replay safely", has the
one narrow exception). Ctrl-C stops between records, never in the middle of
one.

SEQ is a record sequence (42) or a range (40-50). --all selects every record
the filters select. --dry-run prints what would happen and changes nothing.

--watch follows the replayed jobs' outcomes (a result, or a new dead-letter
record) and stops the replay by itself when more than --max-failure-ratio of
those finished failed again (judged once --min-sample finished), leaving the
rest in the dead-letter stream (exit 1). Pace it with --rate so that outcomes
come back before everything is sent.`,
		Example: `  worker dlq replay 42 43 50-60
  worker dlq replay --all --function OCID --status 503 --dry-run
  worker dlq replay --all --reason exhausted --since 2h --rate 20 --watch
  worker dlq replay --all --function OCID --limit 10 --to-function OTHER_OCID --keep`,
		Args: cobra.ArbitraryArgs,
	}
	f := cmd.Flags()
	ff.register(f)
	f.BoolVar(&all, "all", false, "replay every record the filters select")
	f.Float64Var(&rate, "rate", 0, "at most N jobs per second (0: no limit)")
	f.BoolVar(&dryRun, "dry-run", false, "print what would happen; publish and delete nothing")
	f.BoolVar(&keep, "keep", false, "keep the records after replaying them (they are still never replayed twice)")
	f.StringVar(&toFunction, "to-function", "", "replay against this function OCID instead of each job's own")
	f.BoolVar(&watch, "watch", false, "follow the replayed jobs' outcomes and stop when too many fail again")
	f.Float64Var(&maxFailureRatio, "max-failure-ratio", dlqops.MaxFailureRatioDefault, "with --watch: stop once more than this share of finished replayed jobs failed again")
	f.IntVar(&minSample, "min-sample", dlqops.MinSampleDefault, "with --watch: judge the failure ratio only after this many replayed jobs finished")
	f.DurationVar(&watchTimeout, "watch-timeout", dlqops.SettleDefault, "with --watch: how long to wait for outstanding outcomes after the last record")

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkSelection(args, all); err != nil {
			return err
		}
		fl, err := ff.filter(time.Now(), args)
		if err != nil {
			return err
		}
		opts := dlqops.ReplayOptions{Filter: fl, All: all, ToFunction: toFunction, Rate: rate, DryRun: dryRun, Keep: keep}
		if watch {
			if minSample < 1 {
				return usagef("--min-sample %d: want at least 1", minSample)
			}
			opts.Watch = &dlqops.WatchOptions{MaxFailureRatio: maxFailureRatio, MinSample: minSample, Settle: watchTimeout}
			if maxFailureRatio == 0 {
				// 0 is the library's "default"; the flag means it: stop at
				// the first failure.
				opts.Watch.MaxFailureRatio = 1e-9
			}
		} else {
			for _, name := range []string{"max-failure-ratio", "min-sample", "watch-timeout"} {
				if cmd.Flags().Changed(name) {
					return usagef("--%s needs --watch", name)
				}
			}
		}
		if err := opts.Validate(); err != nil {
			return flagError(err)
		}

		ctx := cmd.Context()
		sess, err := openStore(ctx, g)
		if err != nil {
			return err
		}
		defer sess.Close()
		ctx, stop := signalContext(ctx, sess.Log)
		defer stop()

		stream := sess.Topo.DLQStream
		report := dlqview.NewReplayReport(cmd.OutOrStdout(), cmd.ErrOrStderr(), stream, &opts)
		res, err := sess.Store.Replay(ctx, opts)
		if werr := report.Finish(res, err); werr != nil || (res.Selected == 0 && err == nil) {
			return werr
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, dlqops.ErrTooManyFailures):
			msg := "worker: replay stopped: " + strings.TrimPrefix(err.Error(), dlqops.ErrTooManyFailures.Error()+": ")
			if res.Left > 0 {
				msg += fmt.Sprintf("; %s not replayed, still in %s", render.Plural(res.Left, "record"), stream)
			}
			msg += `. The function still fails: see "worker dlq stats --since 10m".`
			return exitError{code: exitFailed, msg: msg}
		default:
			return flagError(err)
		}
	}
	return cmd
}

func newDlqPurgeCmd(g *globalFlags) *cobra.Command {
	var (
		ff               filterFlags
		all, dryRun, yes bool
	)
	cmd := &cobra.Command{
		Use:   "purge (SEQ... | --all) [filters]",
		Short: "Delete dead-letter records",
		Long: `Delete the selected dead-letter records: by sequence (42, or a range 40-50),
or every record the filters select with --all. Only records that existed when
the purge started are deleted. On a terminal it asks for confirmation unless
--yes; without a terminal, --yes is required. --dry-run lists what would be
deleted and deletes nothing.`,
		Example: `  worker dlq purge 42 50-60
  worker dlq purge --all --reason invalid --dry-run
  worker dlq purge --all --function OCID --until 7d --yes`,
		Args: cobra.ArbitraryArgs,
	}
	ff.register(cmd.Flags())
	cmd.Flags().BoolVar(&all, "all", false, "delete every record the filters select")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be deleted; delete nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkSelection(args, all); err != nil {
			return err
		}
		now := time.Now()
		fl, err := ff.filter(now, args)
		if err != nil {
			return err
		}
		opts := dlqops.PurgeOptions{Filter: fl, All: all, DryRun: dryRun}
		if err := opts.Validate(); err != nil {
			return flagError(err)
		}
		stdin, out, errOut := cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
		if !dryRun && !yes && !render.IsTTY(stdin) {
			return usagef("--yes is required when standard input is not a terminal (nothing to ask for confirmation); try --dry-run first")
		}
		ctx := cmd.Context()
		sess, err := openStore(ctx, g)
		if err != nil {
			return err
		}
		defer sess.Close()
		ctx, stop := signalContext(ctx, sess.Log)
		defer stop()
		stream := sess.Topo.DLQStream

		report := dlqview.NewPurgeReport(out, errOut, stream, now, &opts)
		if !dryRun && !yes {
			report.AskFrom(stdin)
		}
		res, err := sess.Store.Purge(ctx, opts)
		if werr := report.Finish(res, err); werr != nil || (res.Selected == 0 && err == nil) || dryRun {
			return werr
		}
		if errors.Is(err, dlqops.ErrNotConfirmed) {
			return exitError{code: exitFailed, msg: "Not confirmed: nothing deleted."}
		}
		return err
	}
	return cmd
}
