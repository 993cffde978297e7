package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/service"
)

func newDlqCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "See, group, replay and purge dead-letter records",
		Long: `Operate on the dead-letter stream (INVOKE_DLQ). Reading (list, stats, show)
never changes it. Start with "worker dlq stats": it groups the records by
function, reason, status and error code, and prints for every group the
filter flags that select it in list, replay --all and purge --all.`,
		Example: `  worker dlq stats
  worker dlq list --reason exhausted --since 2h
  worker dlq show 42
  worker dlq replay --all --function OCID --status 503 --dry-run
  worker dlq replay --all --function OCID --rate 20 --watch
  worker dlq purge --all --reason invalid --until 7d`,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDlqListCmd(g), newDlqStatsCmd(g), newDlqShowCmd(g), newDlqReplayCmd(g), newDlqPurgeCmd(g))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// filterFlags are the selection flags shared by list, stats, replay and
// purge.
type filterFlags struct {
	reasons, functions, statuses, codes []string
	since, until, grep                  string
	limit                               int
}

func (ff *filterFlags) register(f *pflag.FlagSet) {
	f.StringSliceVar(&ff.reasons, "reason", nil, "only these reasons: invalid, permanent, exhausted, expired (repeatable, or comma-separated)")
	f.StringSliceVar(&ff.functions, "function", nil, `only these function OCIDs ("none": records without one)`)
	f.StringSliceVar(&ff.statuses, "status", nil, `only these last HTTP statuses: 503, 5xx, or "none" (no answer)`)
	f.StringSliceVar(&ff.codes, "code", nil, `only these last OCI error codes, e.g. TooManyRequests, or "none"`)
	f.StringVar(&ff.since, "since", "", "only records that failed at or after this: a duration back from now (90m, 2h, 7d) or an RFC 3339 time")
	f.StringVar(&ff.until, "until", "", "only records that failed before this: a duration back from now (90m, 2h, 7d) or an RFC 3339 time")
	f.StringVar(&ff.grep, "grep", "", "only records whose error matches this regular expression (case-insensitive)")
	f.IntVar(&ff.limit, "limit", 0, "at most N records, oldest first (0: no limit)")
}

// filter builds the dlqops.Filter; seqArgs are SEQ or FIRST-LAST arguments.
func (ff *filterFlags) filter(now time.Time, seqArgs []string) (dlqops.Filter, error) {
	f := dlqops.Filter{Functions: ff.functions, Statuses: ff.statuses, Codes: ff.codes, Grep: ff.grep, Limit: ff.limit}
	for _, a := range seqArgs {
		r, err := dlqops.ParseSeqRange(a)
		if err != nil {
			return f, usageError{err}
		}
		f.Seqs = append(f.Seqs, r)
	}
	for _, r := range ff.reasons {
		f.Reasons = append(f.Reasons, dlq.Reason(strings.ToLower(r)))
	}
	var err error
	if f.Since, err = parseWhen("--since", ff.since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("--until", ff.until, now); err != nil {
		return f, err
	}
	if err := f.Validate(); err != nil {
		return f, flagError(err)
	}
	return f, nil
}

// checkSelection is the CLI's reading of the SEQ... | --all rule.
func checkSelection(args []string, all bool) error {
	if len(args) == 0 && !all {
		return usagef("give record sequences (42, or 40-50), or --all with filters to narrow")
	}
	return nil
}

// parseWhen reads an absolute RFC 3339 time or a duration back from now
// (Go durations, plus d for days).
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n float64
		if n, err = strconv.ParseFloat(days, 64); err == nil {
			d = time.Duration(n * float64(24*time.Hour))
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, usagef("%s %q: want a duration back from now (90m, 2h, 7d) or an RFC 3339 time (2025-06-01T12:00:00Z)", flag, v)
	}
	return now.Add(-d), nil
}

// flagError turns the library's field errors into usage errors that name
// the flag.
func flagError(err error) error {
	var fe *dlqops.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch fe.Field {
	case "all":
		return usagef("give record sequences (42, or 40-50) or --all (with filters to narrow), not both")
	case "seq":
		return usagef("SEQ: %v", fe.Err)
	}
	return usagef("--%s: %v", fe.Field, fe.Err)
}

// openStore loads the configuration and opens the dead-letter store.
func openStore(ctx context.Context, g *globalFlags) (*service.DLQSession, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	return service.OpenDLQ(ctx, cfg, clientLogger(cfg.Log, os.Stderr))
}

// clientLogger is newLogger without its process-wide setting of zerolog's
// time format: a short-lived command needs no milliseconds, and leaving the
// global alone keeps commands run side by side in one process (tests) from
// racing on it.
func clientLogger(c config.Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	l := zerolog.New(w)
	if c.Format == "console" {
		l = zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"})
	}
	return l.Level(level).With().Timestamp().Logger()
}
