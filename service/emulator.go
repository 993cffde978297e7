// The function emulator assembled from configuration (`worker emulator`,
// `worker dev`).

package service

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/invoke/emulator"
)

// StartEmulator builds and starts an emulator from configuration. extra
// functions (dev mode's) are added to the configured ones, which win.
// knownOnly makes every other function one that does not exist (404).
func StartEmulator(c config.Emulator, extra map[string]emulator.Behavior, knownOnly bool, keyID string, log zerolog.Logger) (*emulator.Emulator, error) {
	cfg := emulator.Config{
		Logger:             log.With().Str("component", "emulator").Logger(),
		KeyID:              keyID,
		Functions:          map[string]emulator.Behavior{},
		KnownFunctionsOnly: knownOnly,
		RecordCalls:        c.RecordCalls > 0,
		MaxRecordedCalls:   c.RecordCalls,
	}
	for id, b := range extra {
		cfg.Functions[id] = b
	}
	if c.PublicKey != "" {
		pem, err := os.ReadFile(c.PublicKey)
		if err != nil {
			return nil, &config.KeyError{Key: "emulator.public_key", Err: err}
		}
		if cfg.PublicKey, err = emulator.LoadPublicKey(pem); err != nil {
			return nil, &config.KeyError{Key: "emulator.public_key", Err: err}
		}
	} else {
		log.Warn().Msg("emulator: no public key: request signatures are NOT verified")
	}
	if c.Default != "" {
		b, err := emulator.ParseBehavior(c.Default)
		if err != nil {
			return nil, &config.KeyError{Key: "emulator.default", Err: err}
		}
		cfg.Default = b
	}
	for id, spec := range c.Functions {
		b, err := emulator.ParseBehavior(spec)
		if err != nil {
			return nil, &config.KeyError{Key: "emulator.functions", Err: fmt.Errorf("%s: %w", id, err)}
		}
		cfg.Functions[id] = b
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := emu.Start(c.Listen); err != nil {
		return nil, fmt.Errorf("emulator: listen on %s: %w (set emulator.listen or --listen)", c.Listen, err)
	}
	return emu, nil
}
