package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
)

// LoadOptions says where configuration comes from. Load reads nothing
// else: the caller passes the environment (os.Environ()) and flags
// explicitly, which keeps Load deterministic and testable.
type LoadOptions struct {
	// File is a YAML file; empty means none (defaults only). A file that is
	// named but missing is an error.
	File string
	// Environ is the environment in os.Environ form ("NAME=value"); only
	// WORKER_ variables are read.
	Environ []string
	// Overrides are applied last, in order (the CLI passes flags here).
	Overrides []Override
	// Warn, when set, receives what is loaded but exposed: a secret on the
	// command line, or a file holding one that group or others can read.
	Warn func(msg string)
}

// Override sets one dotted key from its string form, as a flag does.
// Lists are comma-separated, maps are k=v,k2=v2.
type Override struct {
	Key, Value string
}

// Load builds the configuration: Default, then File, then WORKER_
// variables from Environ, then Overrides, then Validate. Each source
// replaces whole values: a list or map from a later source replaces the
// earlier one rather than merging with it.
//
// Secrets named by *_file keys are read last, so Validate sees them.
//
// Every returned error wraps ErrInvalid; errors about keys are *KeyError,
// joined when there are several.
func Load(opts LoadOptions) (Config, error) {
	cfg, err := Read(opts)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Read is Load without Validate: the configuration as written, for a tool
// that explains what is wrong with it (worker doctor) rather than refusing
// it. An unreadable file, an unknown key or a value that does not parse is
// still an error: there is no configuration to explain. Secrets named by
// *_file keys are read here too, and exposed ones reported to opts.Warn.
func Read(opts LoadOptions) (Config, error) {
	cfg := Default()
	warn := opts.Warn
	if warn == nil {
		warn = func(string) {}
	}
	var errs []error
	fileHasSecret := false
	if opts.File != "" {
		data, err := os.ReadFile(opts.File)
		if err != nil {
			return Config{}, invalid(err)
		}
		errs = append(errs, decodeYAML(data, opts.File, &cfg)...)
		fileHasSecret = cfg.hasInlineSecret()
	}
	reg := registry()
	errs = append(errs, applyEnv(&cfg, opts.Environ, reg)...)
	errs = append(errs, applyOverrides(&cfg, opts.Overrides, reg)...)
	if len(errs) > 0 {
		// Validating a half-applied configuration would only add noise.
		return Config{}, errors.Join(errs...)
	}
	for _, o := range opts.Overrides {
		if w := onCommandLine(o); w != "" {
			warn(w)
		}
	}
	if err := readSecretFiles(&cfg); err != nil {
		return Config{}, err
	}
	for _, w := range exposedFiles(cfg, opts.File, fileHasSecret) {
		warn(w)
	}
	return cfg, nil
}

type keyRegistry struct {
	byKey map[string]leaf
	byEnv map[string]leaf
	keys  []string
	envs  []string
}

func registry() keyRegistry {
	r := keyRegistry{byKey: map[string]leaf{}, byEnv: map[string]leaf{}}
	for _, l := range leaves() {
		r.byKey[l.key] = l
		r.byEnv[EnvName(l.key)] = l
		r.keys = append(r.keys, l.key)
		r.envs = append(r.envs, EnvName(l.key))
	}
	return r
}

func (r keyRegistry) ptr(cfg *Config, l leaf) any {
	return reflect.ValueOf(cfg).Elem().FieldByIndex(l.index).Addr().Interface()
}

func applyEnv(cfg *Config, environ []string, r keyRegistry) []error {
	var errs []error
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		l, ok := r.byEnv[name]
		if !ok && kubernetesServiceLink(name) {
			continue
		}
		if list, fo := fileOnly(name, true); !ok && fo {
			errs = append(errs, &KeyError{Key: name, Err: fmt.Errorf("%s can only be set in the configuration file, not from the environment", list)})
			continue
		}
		if !ok {
			hint := "WORKER_ variables must name a key, e.g. " + EnvName("nats.url")
			if s := suggest(name, r.envs); s != "" {
				hint = "did you mean " + s + "?"
			}
			errs = append(errs, &KeyError{Key: name, Err: fmt.Errorf("%w (%s)", ErrUnknownKey, hint)})
			continue
		}
		if err := setScalar(r.ptr(cfg, l), value); err != nil {
			errs = append(errs, &KeyError{Key: l.key, Err: fmt.Errorf("%w (from %s)", err, name)})
		}
	}
	return errs
}

// kubernetesServiceLink reports whether name is one of the variables
// Kubernetes injects for a Service called "worker" (WORKER_SERVICE_HOST,
// WORKER_PORT_8080_TCP, ...). No configuration section is called service
// or port, so they cannot be meant as keys.
func kubernetesServiceLink(name string) bool {
	return name == EnvPrefix+"PORT" || strings.HasPrefix(name, EnvPrefix+"PORT_") || strings.HasPrefix(name, EnvPrefix+"SERVICE_")
}

func applyOverrides(cfg *Config, overrides []Override, r keyRegistry) []error {
	var errs []error
	for _, o := range overrides {
		l, ok := r.byKey[o.Key]
		if list, fo := fileOnly(o.Key, false); !ok && fo {
			errs = append(errs, &KeyError{Key: o.Key, Err: fmt.Errorf("%s can only be set in the configuration file, not with an override", list)})
			continue
		}
		if !ok {
			errs = append(errs, &KeyError{Key: o.Key, Err: unknownKeyError(o.Key, r.keys, 0)})
			continue
		}
		if err := setScalar(r.ptr(cfg, l), o.Value); err != nil {
			errs = append(errs, &KeyError{Key: l.key, Err: err})
		}
	}
	return errs
}

// unknownKeyError explains an unknown dotted key: a section named as if it
// were a key, or a likely typo. line is 0 when the key is not from a file.
func unknownKeyError(key string, keys []string, line int) error {
	var notes []string
	if line > 0 {
		notes = append(notes, fmt.Sprintf("line %d", line))
	}
	if i := slices.IndexFunc(keys, func(k string) bool { return strings.HasPrefix(k, key+".") }); i >= 0 {
		notes = append(notes, "a section, not a key: set one of its keys, e.g. "+keys[i])
	} else if s := suggest(key, withSections(keys)); s != "" {
		notes = append(notes, "did you mean "+s+"?")
	}
	if len(notes) == 0 {
		return ErrUnknownKey
	}
	return fmt.Errorf("%w (%s)", ErrUnknownKey, strings.Join(notes, "; "))
}

// withSections adds every section path (nats, nats.tls) to keys, so a
// mistyped section name gets a suggestion too.
func withSections(keys []string) []string {
	out := append([]string(nil), keys...)
	seen := map[string]bool{}
	for _, k := range keys {
		for i := range len(k) {
			if k[i] == '.' && !seen[k[:i]] {
				seen[k[:i]] = true
				out = append(out, k[:i])
			}
		}
	}
	return out
}
