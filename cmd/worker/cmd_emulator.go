package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/service"
)

func newEmulatorCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run the local function emulator alone",
		Long: `Run an HTTP server that speaks the OCI Functions invoke API
(POST /{apiVersion}/functions/{functionId}/actions/invoke), verifies every
request's OCI signature against --public-key, and serves functions whose
behaviour is chosen per function:

  echo                       answer 200 with the request body (default)
  status=404                 answer that status (OCI error JSON when >= 400)
  latency=200ms              wait before answering
  fail=2                     the first 2 calls fail (fail_status, default 503)
  fail_ratio=0.3             each call fails with probability 0.3
  fail_status=502, code=X, message=Y, retry_after=2s
  hang                       never answer
  drop                       close the connection without an answer
  size=1024                  answer with 1024 bytes instead of the echo
  trickle=100ms              send the headers at once, then the body 1 KiB at a time, 100ms apart
  gzip                       gzip the body and say so in Content-Encoding

Combine with commas: --function ocid1.fnfunc.oc1.phx.aaaa=fail=2,latency=50ms
Admin routes: GET /emulator/stats, GET /emulator/calls/{id} (with
--record-calls), PUT /emulator/functions/{id} (body: spec),
POST /emulator/reset, GET /healthz.`,
	}
	cmd.Flags().String("listen", "", "address to listen on (config emulator.listen)")
	cmd.Flags().String("public-key", "", "PEM public key to verify signatures with (config emulator.public_key); without it nothing is verified")
	cmd.Flags().String("default", "", "behaviour of functions not listed (config emulator.default)")
	cmd.Flags().StringArray("function", nil, "OCID=SPEC: a function's behaviour (repeatable)")
	cmd.Flags().Int("record-calls", 0, "keep the last N calls of each function for GET /emulator/calls/{id} (config emulator.record_calls)")
	cmd.Flags().String("generate-keys", "", "create (once) a throwaway API key and an OCI config in DIR for workers to sign with, and verify with its public key")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		extra := flagOverride(cmd, "listen", "emulator.listen")
		extra = append(extra, flagOverride(cmd, "public-key", "emulator.public_key")...)
		extra = append(extra, flagOverride(cmd, "default", "emulator.default")...)
		extra = append(extra, flagOverride(cmd, "record-calls", "emulator.record_calls")...)
		cfg, err := loadConfig(g, extra...)
		if err != nil {
			return err
		}
		fns, _ := cmd.Flags().GetStringArray("function")
		for _, f := range fns {
			id, spec, ok := cutFunctionSpec(f)
			if !ok {
				return usagef("--function %q: want OCID=SPEC", f)
			}
			if cfg.Emulator.Functions == nil {
				cfg.Emulator.Functions = map[string]string{}
			}
			cfg.Emulator.Functions[id] = spec
		}
		keyID := ""
		if dir, _ := cmd.Flags().GetString("generate-keys"); dir != "" {
			creds, err := devcreds.Ensure(dir)
			if err != nil {
				return err
			}
			if cfg.Emulator.PublicKey == "" {
				cfg.Emulator.PublicKey = creds.PublicKeyFile
				keyID = creds.KeyID()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "workers sign with: --set invoke.oci.config_file=%s\n", creds.ConfigFile)
		}
		log := newLogger(cfg.Log, os.Stderr)
		ctx, stop := signalContext(cmd.Context(), log)
		defer stop()
		emu, err := service.StartEmulator(cfg.Emulator, nil, false, keyID, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "emulator listening on %s\n", emu.URL())
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return emu.Close(sctx)
	}
	return cmd
}

// cutFunctionSpec splits "OCID=SPEC" at the first "=" (specs contain "="
// themselves, OCIDs never do).
func cutFunctionSpec(s string) (id, spec string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
