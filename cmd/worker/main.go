// Command worker takes invocation jobs from NATS JetStream, invokes OCI
// Functions with signed requests, and publishes results or dead-letter
// records. It only wires the packages together; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/config"
)

// Exit codes of the contract.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError is bad usage: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError carries a chosen exit code with an already reported outcome.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func main() {
	// Millisecond timestamps: job lines arrive many per second. Set once,
	// here: zerolog reads this global on every line.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(args, stdout, stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "worker: %v\n", err)
	var ue usageError
	// cobra reports an unknown subcommand as a plain error.
	if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailed
}

// globalFlags are taken by every command.
type globalFlags struct {
	configFile string
	natsURL    string
	sets       []string
	logLevel   string
	logFormat  string
	// args is the command line after the program name, as given (worker
	// bench starts its consumer processes with the same).
	args []string
}

func newRootCmd(args []string, stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{args: args}
	root := &cobra.Command{
		Use:           "worker",
		Short:         "Invoke OCI Functions from NATS JetStream jobs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "YAML configuration file (see configs/worker.yaml)")
	pf.StringVar(&g.natsURL, "nats", "", "NATS server URL(s), comma-separated (config nats.url); empty: the embedded server")
	pf.StringArrayVar(&g.sets, "set", nil, "override a configuration key, KEY=VALUE (repeatable), e.g. --set worker.concurrency=128")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (config log.level)")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: json or console (config log.format)")

	root.AddCommand(
		newRunCmd(g),
		newDevCmd(g),
		newEnqueueCmd(g),
		newEmulatorCmd(g),
		newDlqCmd(g),
		newVersionCmd(),
		newBenchCmd(g),
		newDoctorCmd(g),
	)
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs turns cobra's argument errors into usage errors.
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		v = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
