// Package config owns the worker's configuration: its shape, its defaults,
// loading it from a YAML file, environment variables and command-line
// overrides, and validating the result.
//
// Precedence, lowest first: Default, the YAML file, WORKER_<SECTION>_<KEY>
// environment variables, then overrides (flags). Every key has a dotted name
// (nats.url, invoke.timeout.read); Keys lists them all and EnvName derives
// each environment variable from it, so the YAML tags on the structs are the
// single source of key names.
//
// Every error returned by Load and Validate wraps ErrInvalid (the CLI maps it
// to exit code 2), and errors about one key are *KeyError values whose
// message names that key.
package config
