// What `worker dev` adds to a configuration: throwaway credentials, the
// emulator serving a few functions, and the worker pointed at it.

package service

import (
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
)

// DevFunction is one of the functions `worker dev` serves.
type DevFunction struct {
	Name, ID, What string
	Behavior       emulator.Behavior
}

// DevFunctions are the functions `worker dev` serves, echo first and
// missing last.
func DevFunctions() []DevFunction {
	return []DevFunction{
		{"echo", "ocid1.fnfunc.oc1.dev.aaaaaaaaecho", "answers with the request body", emulator.Behavior{}},
		{"slow", "ocid1.fnfunc.oc1.dev.aaaaaaaaslow", "echoes after 2s", emulator.Behavior{Latency: 2 * time.Second}},
		{"flaky", "ocid1.fnfunc.oc1.dev.aaaaaaaaflaky", "fails half its calls with 503; retried until it answers", emulator.Behavior{FailRatio: 0.5, FailStatus: 503}},
		{"broken", "ocid1.fnfunc.oc1.dev.aaaaaaaabroken", "always fails with 502; retried, then dead-lettered as exhausted", emulator.Behavior{Status: 502, Message: "function failed"}},
		{"missing", "ocid1.fnfunc.oc1.dev.aaaaaaaamissing", "answers 404; dead-lettered as permanent at once", emulator.Behavior{Status: 404}},
	}
}

// StartDev makes throwaway API-key credentials under the data directory
// (once), starts the emulator serving DevFunctions and the configured
// emulator.functions, verifying signatures with those credentials, and
// returns cfg changed to sign with them and to find every function at the
// emulator. The caller closes the emulator.
func StartDev(cfg config.Config, log zerolog.Logger) (config.Config, *emulator.Emulator, devcreds.Credentials, error) {
	dataDir := filepath.Dir(cfg.NATS.Embedded.StoreDir)
	creds, err := devcreds.Ensure(filepath.Join(dataDir, "dev"))
	if err != nil {
		return cfg, nil, creds, err
	}
	if cfg.Emulator.PublicKey == "" {
		cfg.Emulator.PublicKey = creds.PublicKeyFile
	}
	fns := map[string]emulator.Behavior{}
	for _, f := range DevFunctions() {
		fns[f.ID] = f.Behavior
	}
	// Functions other than these do not exist, as on OCI: GetFunction
	// answers 404 and their jobs are dead-lettered as permanent.
	emu, err := StartEmulator(cfg.Emulator, fns, true, creds.KeyID(), log)
	if err != nil {
		return cfg, nil, creds, err
	}

	// The worker signs with the dev credentials through the same
	// api_key path it uses against OCI.
	cfg.Invoke.OCI.Auth = invoke.AuthAPIKey
	cfg.Invoke.OCI.ConfigFile = creds.ConfigFile
	cfg.Invoke.OCI.Profile = devcreds.Profile
	cfg.Invoke.OCI.Passphrase = ""
	if cfg.Invoke.Endpoints == nil {
		cfg.Invoke.Endpoints = map[string]string{}
	}
	for _, f := range DevFunctions() {
		if _, ok := cfg.Invoke.Endpoints[f.ID]; !ok {
			cfg.Invoke.Endpoints[f.ID] = emu.URL()
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
	return cfg, emu, creds, nil
}
