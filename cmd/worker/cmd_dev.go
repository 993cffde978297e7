package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/service"
)

func newDevCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Embedded NATS + local function emulator + worker, in one process",
		Long: `Run everything for local work in one process: an embedded NATS server with
JetStream, the function emulator (verifying every request signature), and the
worker, signing with throwaway OCI API-key credentials generated under
./data/dev. It prints the functions it serves and the command to try.

Nothing leaves the machine: the worker looks functions up (GetFunction) at the
emulator, where only the functions listed and those in emulator.functions
exist; a job for any other function is dead-lettered as permanent (404).`,
	}
	cmd.Flags().String("http", "", "admin endpoint address (config http.listen)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(g, flagOverride(cmd, "http", "http.listen")...)
		if err != nil {
			return err
		}
		if !cmd.Flags().Changed("log-format") && os.Getenv("WORKER_LOG_FORMAT") == "" && g.configFile == "" {
			cfg.Log.Format = "console" // a human is watching
		}
		log := newLogger(cfg.Log, os.Stderr)
		ctx, stop := signalContext(cmd.Context(), log)
		defer stop()

		cfg, emu, creds, err := service.StartDev(cfg, log)
		if err != nil {
			return err
		}
		defer func() { _ = within(5*time.Second, emu.Close) }()

		opt := service.Options{Version: version()}
		natsDesc := cfg.NATS.URL
		if cfg.NATS.URL == "" {
			if opt.Embedded, err = service.StartEmbedded(cfg, log); err != nil {
				return err
			}
			defer opt.Embedded.Shutdown()
			natsDesc = fmt.Sprintf("%s (embedded; data in %s)", opt.Embedded.ClientURL(), opt.Embedded.StoreDir())
		}
		out := cmd.OutOrStdout()
		opt.OnReady = func() { printDevBanner(out, natsDesc, emu.URL(), creds.PublicKeyFile, cfg.HTTP.Listen) }
		defer startGCFloor(cfg.Worker)()
		return service.Run(ctx, cfg, log, opt)
	}
	return cmd
}

func printDevBanner(out io.Writer, natsDesc, emuURL, pubKey, admin string) {
	fns := service.DevFunctions()
	prog := "worker"
	if strings.Contains(os.Args[0], "go-build") {
		prog = "go run ./cmd/worker"
	}
	fmt.Fprintf(out, "\nworker dev is running (Ctrl-C stops it).\n\n")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  NATS\t%s\n", natsDesc)
	fmt.Fprintf(tw, "  emulator\t%s (verifies signatures against %s)\n", emuURL, pubKey)
	if admin != "" {
		fmt.Fprintf(tw, "  admin\thttp://%s/readyz\n", admin)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nFunctions:\n")
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, f := range fns {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, f.ID, f.What)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nTry, in another shell:\n  %s enqueue --function %s --body hello --wait\n", prog, fns[0].ID)
	fmt.Fprintf(out, "  %s enqueue --function %s --body oops --wait\n\n", prog, fns[4].ID)
}
