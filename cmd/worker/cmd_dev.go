package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/service"
)

// devFunction is one of the functions `worker dev` serves.
type devFunction struct {
	name, id, what string
	behavior       emulator.Behavior
}

var devFunctions = []devFunction{
	{"echo", "ocid1.fnfunc.oc1.dev.aaaaaaaaecho", "answers with the request body", emulator.Behavior{}},
	{"slow", "ocid1.fnfunc.oc1.dev.aaaaaaaaslow", "echoes after 2s", emulator.Behavior{Latency: 2 * time.Second}},
	{"flaky", "ocid1.fnfunc.oc1.dev.aaaaaaaaflaky", "fails half its calls with 503; retried until it answers", emulator.Behavior{FailRatio: 0.5, FailStatus: 503}},
	{"broken", "ocid1.fnfunc.oc1.dev.aaaaaaaabroken", "always fails with 502; retried, then dead-lettered as exhausted", emulator.Behavior{Status: 502, Message: "function failed"}},
	{"missing", "ocid1.fnfunc.oc1.dev.aaaaaaaamissing", "answers 404; dead-lettered as permanent at once", emulator.Behavior{Status: 404}},
}

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

		dataDir := filepath.Dir(cfg.NATS.Embedded.StoreDir)
		creds, err := devcreds.Ensure(filepath.Join(dataDir, "dev"))
		if err != nil {
			return err
		}
		if cfg.Emulator.PublicKey == "" {
			cfg.Emulator.PublicKey = creds.PublicKeyFile
		}
		fns := map[string]emulator.Behavior{}
		for _, f := range devFunctions {
			fns[f.id] = f.behavior
		}
		// Functions other than these do not exist, as on OCI: GetFunction
		// answers 404 and their jobs are dead-lettered as permanent.
		emu, err := startEmulator(cfg.Emulator, fns, true, creds.KeyID(), log)
		if err != nil {
			return err
		}
		defer func() { _ = within(5*time.Second, emu.Close) }()

		// The worker signs with the dev credentials through the same
		// api_key path it uses against OCI.
		cfg.Invoke.OCI.Auth = invoke.AuthAPIKey
		cfg.Invoke.OCI.ConfigFile = creds.ConfigFile
		cfg.Invoke.OCI.Profile = devcreds.Profile
		cfg.Invoke.OCI.Passphrase = ""
		if cfg.Invoke.Endpoints == nil {
			cfg.Invoke.Endpoints = map[string]string{}
		}
		for _, f := range devFunctions {
			if _, ok := cfg.Invoke.Endpoints[f.id]; !ok {
				cfg.Invoke.Endpoints[f.id] = emu.URL()
			}
		}
		for id := range cfg.Emulator.Functions {
			if _, ok := cfg.Invoke.Endpoints[id]; !ok {
				cfg.Invoke.Endpoints[id] = emu.URL()
			}
		}
		// Every other function is looked up at the emulator too: the dev
		// credentials are good for nothing else, and dev stays local.
		cfg.Invoke.ManagementEndpoint = emu.URL()

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
	for _, f := range devFunctions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.name, f.id, f.what)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nTry, in another shell:\n  %s enqueue --function %s --body hello --wait\n", prog, devFunctions[0].id)
	fmt.Fprintf(out, "  %s enqueue --function %s --body oops --wait\n\n", prog, devFunctions[4].id)
}
