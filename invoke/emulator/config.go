package emulator

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// DefaultMaxRequestBytes is OCI's invoke request body limit (6 MiB).
const DefaultMaxRequestBytes = 6 * 1024 * 1024

// Config configures an Emulator. The zero value is a valid, unsigned,
// echo-everything emulator.
type Config struct {
	// Logger receives request logs (debug), rejections (warn) and server
	// errors. The zero value logs nothing, like zerolog.Nop().
	Logger zerolog.Logger

	// PublicKey, when set, makes every invoke request carry a valid OCI
	// signature made with the matching private key; others get 401.
	PublicKey *rsa.PublicKey
	// KeyID, when non-empty, must equal the signature's keyId
	// ("<tenancy>/<user>/<fingerprint>" for API keys).
	KeyID string
	// MaxClockSkew bounds |Now() - Date|; 0 means DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// Now is the emulator clock for Date checks and call records; nil means time.Now.
	Now func() time.Time

	// MaxRequestBytes is the request body limit (413 above it); 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64

	// Default is the behaviour of functions without their own; the zero value echoes.
	Default Behavior
	// Functions sets per-function behaviours by function id (OCID).
	Functions map[string]Behavior
	// KnownFunctionsOnly makes every function that is neither in Functions
	// nor given a behaviour with SetBehavior unknown: GetFunction and invoke
	// answer 404 NotAuthorizedOrNotFound for it, as OCI does for a function
	// that does not exist. By default every well-formed id is a function
	// with the Default behaviour.
	KnownFunctionsOnly bool

	// Seed seeds the random source behind Behavior.FailRatio, so a given
	// seed and call order always produce the same failures.
	Seed uint64
	// Rand, when non-nil, replaces the seeded source. The emulator calls it
	// under its own lock; nothing else may use it concurrently.
	Rand *rand.Rand

	// RecordCalls keeps a Call record per invoke, for Emulator.Calls.
	RecordCalls bool
	// MaxRecordedCalls caps the records kept per function (oldest dropped),
	// for long dev runs with RecordCalls on; 0 means unlimited.
	MaxRecordedCalls int
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.MaxClockSkew < 0 {
		return fmt.Errorf("emulator: MaxClockSkew %s is negative", c.MaxClockSkew)
	}
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("emulator: MaxRequestBytes %d is negative", c.MaxRequestBytes)
	}
	if c.MaxRecordedCalls < 0 {
		return fmt.Errorf("emulator: MaxRecordedCalls %d is negative", c.MaxRecordedCalls)
	}
	if c.PublicKey != nil && (c.PublicKey.N == nil || c.PublicKey.N.BitLen() < 1024) {
		return errors.New("emulator: PublicKey is not a usable RSA key (need >= 1024 bits)")
	}
	if err := c.Default.Validate(); err != nil {
		return fmt.Errorf("emulator: Default behavior: %w", err)
	}
	for id, b := range c.Functions {
		if err := validFunctionID(id); err != nil {
			return fmt.Errorf("emulator: Functions: %w", err)
		}
		if err := b.Validate(); err != nil {
			return fmt.Errorf("emulator: Functions[%q]: %w", id, err)
		}
	}
	return nil
}

// validFunctionID rejects ids that could never arrive as a path segment.
func validFunctionID(id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") || strings.TrimSpace(id) != id {
		return fmt.Errorf("invalid function id %q", id)
	}
	return nil
}
