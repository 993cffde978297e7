package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/bench"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/service"
)

func newBenchCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load test against the emulator; prints throughput and latency percentiles",
		Long: `Run the worker (the same service as "worker run", configured by --config,
WORKER_ variables and --set) against a fresh NATS server and the in-process
function emulator, enqueue --jobs jobs after a warm-up, and report jobs/s,
end-to-end latency (enqueue to result) and the latency the worker adds to
the function's own time (p50/p95/p99/max), process CPU seconds per 1,000
jobs, allocations per job and peak RSS.

The worker (and, with --ceilings, the loops (a) and (d)) runs in a fresh
process of its own per measurement, this binary again with the same
arguments, as it runs in production: CPU, allocations and peak RSS are that
process's own, and the bench process (NATS, emulator, load generator) holds
its garbage collector during measured windows so that its pauses are not
counted as the worker's latency. --in-process runs everything in one
process instead.

Without --nats each measurement gets a fresh embedded server (random
loopback port, temp store deleted afterwards); with --nats, fresh uniquely
named streams that are deleted afterwards.

--ceilings also measures, in the same run and with the same job count:
(a) a NATS-only loop (consume, publish the result, ack), (b) RSA-2048
signing on all cores, (c) HTTP round trips to the emulator without NATS,
signed and unsigned, and (d) the bare minimum loop (consume, sign, POST,
publish the contract's result, ack), and states the worker's throughput as
a share of (d) and (b).

Only figures from one run compare: the machine's load changes between runs.`,
	}
	f := cmd.Flags()
	f.Int("jobs", bench.JobsDefault, "jobs measured per measurement")
	f.Int("warmup", 0, "jobs run before each measurement and left out of it (default 5% of --jobs; -1: none)")
	f.Int("concurrency", 0, "the worker's invocations in flight, and the bare loops' goroutines (config worker.concurrency, default 64)")
	f.String("body-size", "1KiB", "size of each job's body")
	f.String("response-size", "echo", "size of the function's answer, or echo (the job's body)")
	f.Duration("latency", 0, "the function's own time per call")
	f.Float64("rate", 0, "enqueue open-loop at this many jobs/s (0: as fast as possible)")
	f.Int("max-pending", bench.MaxPendingDefault, "enqueue: publish acknowledgements outstanding at most (fewer for large bodies: 64 MiB of bodies)")
	f.Bool("unsigned", false, "do not sign (invoke.oci.auth none; the emulator verifies nothing)")
	f.Bool("ceilings", false, "also measure the ceilings (a)-(d) and the worker's ratio to them")
	f.Int("rounds", 1, "measure the worker (and, with --ceilings, (d) right after it) this many times in turn; report the medians")
	f.Duration("sign-duration", bench.SignDurationDefault, "how long the signing rate (b) is measured")
	f.Duration("timeout", bench.TimeoutDefault, "bound on each measurement")
	f.Bool("json", false, "print the report as JSON")
	f.String("cpuprofile", "", "write a CPU profile of the worker's measured window to FILE (and, with --ceilings, of the loops (a) and (d) to FILE.nats_loop and FILE.bare_loop; the first round's)")
	f.String("http", "", "admin endpoint of the benchmarked worker (config http.listen); off unless given, e.g. with --set http.pprof=true")
	f.Bool("in-process", false, "run the worker, (a) and (d) on goroutines of the bench process instead of a process of their own each")
	// The side of a consumer process (bench.ServeConsumer): started by the
	// bench itself with its own arguments plus this flag.
	f.Bool(consumerProcessFlag, false, "")
	_ = f.MarkHidden(consumerProcessFlag)

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		extra := flagOverride(cmd, "concurrency", "worker.concurrency")
		extra = append(extra, flagOverride(cmd, "http", "http.listen")...)
		cfg, err := loadConfig(g, extra...)
		if err != nil {
			return err
		}
		if !cmd.Flags().Changed("http") {
			cfg.HTTP.Listen = "" // a bench must not take the port of a running worker
		}
		bc, err := benchConfig(cmd, cfg)
		if err != nil {
			return err
		}
		stderr := cmd.ErrOrStderr()
		progress := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05"}).With().Timestamp().Logger()
		bc.Logger = progress
		bc.Worker = service.BenchWorker(cfg, benchWorkerLogger(cfg.Log, stderr), service.Options{Version: version()})
		if cfg.NATS.URL != "" {
			bc.NATSURL = cfg.NATS.URL
			bc.Connect = func(ctx context.Context, url string) (*nats.Conn, error) {
				return queue.Connect(ctx, service.ConnConfig(cfg, progress, url, nil))
			}
		}
		if child, _ := cmd.Flags().GetBool(consumerProcessFlag); child {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Every consumer, the loops too, with the process settings of
			// `worker run`: the comparison is of the code, not of them.
			defer startGCFloor(cfg.Worker)()
			return bench.ServeConsumer(ctx, cmd.InOrStdin(), cmd.OutOrStdout(), bench.ConsumerConfig{Worker: bc.Worker, Connect: bc.Connect})
		}
		if inProcess, _ := cmd.Flags().GetBool("in-process"); !inProcess {
			bc.Spawn = spawnConsumer(g.args, stderr)
		}
		if file, _ := cmd.Flags().GetString("cpuprofile"); file != "" {
			// Created now, so a bad path fails before minutes of load.
			workerProfile, err := os.Create(file)
			if err != nil {
				return err
			}
			defer workerProfile.Close() // a second close after the profile is harmless
			taken := map[string]bool{}
			bc.CPUProfile = func(name string) (io.WriteCloser, error) {
				if taken[name] {
					return nil, nil // with --rounds, the first round's only
				}
				taken[name] = true
				if name == "worker" {
					return workerProfile, nil
				}
				return os.Create(file + "." + name)
			}
		}
		bc = bc.WithDefaults()
		if err := bc.Validate(); err != nil {
			return usageError{err}
		}

		ctx, stop := signalContext(cmd.Context(), progress)
		defer stop()
		rep, runErr := bench.Run(ctx, bc)
		if rep.Worker.Jobs > 0 || runErr == nil {
			out := cmd.OutOrStdout()
			asJSON, _ := cmd.Flags().GetBool("json")
			if asJSON {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteTable(out)
			}
			if err != nil && runErr == nil {
				runErr = err
			}
		}
		return runErr
	}
	return cmd
}

// consumerProcessFlag makes `worker bench` the consumer process of another
// `worker bench` (bench.Config.Spawn).
const consumerProcessFlag = "consumer-process"

// spawnConsumer starts this binary again with this bench's own arguments,
// so that the consumer process loads exactly the same configuration, as a
// consumer process. Its logs go to stderr.
func spawnConsumer(args []string, stderr io.Writer) bench.SpawnFunc {
	return func(context.Context) (*exec.Cmd, error) {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(self, append(slices.Clone(args), "--"+consumerProcessFlag)...)
		cmd.Stderr = stderr
		return cmd, nil
	}
}

// benchConfig maps the flags onto bench.Config.
func benchConfig(cmd *cobra.Command, cfg config.Config) (bench.Config, error) {
	f := cmd.Flags()
	bc := bench.Config{
		Concurrency: cfg.Worker.Concurrency,
		Topology:    service.Topology(cfg),
		StateBucket: cfg.Streams.State,
	}
	bc.Jobs, _ = f.GetInt("jobs")
	bc.Warmup, _ = f.GetInt("warmup")
	bc.Latency, _ = f.GetDuration("latency")
	bc.Rate, _ = f.GetFloat64("rate")
	bc.MaxPending, _ = f.GetInt("max-pending")
	bc.Unsigned, _ = f.GetBool("unsigned")
	bc.Ceilings, _ = f.GetBool("ceilings")
	bc.Rounds, _ = f.GetInt("rounds")
	bc.SignDuration, _ = f.GetDuration("sign-duration")
	bc.Timeout, _ = f.GetDuration("timeout")
	if bc.Jobs < 1 {
		return bc, usagef("--jobs must be at least 1, got %d", bc.Jobs)
	}
	s, _ := f.GetString("body-size")
	size, err := config.ParseSize(s)
	if err != nil {
		return bc, usagef("--body-size: %v", err)
	}
	bc.BodySize = int(size)
	if size == 0 {
		bc.BodySize = -1 // empty, not the default
	}
	if s, _ = f.GetString("response-size"); !strings.EqualFold(s, "echo") {
		if size, err = config.ParseSize(s); err != nil {
			return bc, usagef("--response-size: %v (or echo)", err)
		}
		bc.ResponseSize = int(size)
	}
	return bc, nil
}

// benchWorkerLogger formats the worker's log lines as production does
// (JSON, configured level), so their cost is measured, but shows only
// warnings and errors: a line per job would bury the report.
func benchWorkerLogger(c config.Log, stderr io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00" // as newLogger
	return zerolog.New(warnOnly{stderr}).Level(level).With().Timestamp().Logger()
}

// warnOnly passes warnings and errors on and drops the rest.
type warnOnly struct{ out io.Writer }

func (w warnOnly) Write(p []byte) (int, error) { return len(p), nil }

func (w warnOnly) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l >= zerolog.WarnLevel && l < zerolog.NoLevel {
		return w.out.Write(p)
	}
	return len(p), nil
}

var _ zerolog.LevelWriter = warnOnly{}
