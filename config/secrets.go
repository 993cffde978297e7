package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// MinAdminTokenLength is the shortest admin bearer token accepted: a
// shorter one can be guessed over the network.
const MinAdminTokenLength = 16

// secretKeys are the keys whose values are secrets: they are redacted,
// and warned about when given on the command line.
var secretKeys = []string{"nats.password", "nats.token", "invoke.oci.passphrase"}

// secretFromFile is a secret that may instead be read from a file.
type secretFromFile struct {
	key, fileKey string
	value        *string
	file         string
	// inline is false when the secret has no key of its own (http.token).
	inline bool
}

func (c *Config) secretsFromFiles() []secretFromFile {
	return []secretFromFile{
		{"nats.password", "nats.password_file", &c.NATS.Password, c.NATS.PasswordFile, true},
		{"nats.token", "nats.token_file", &c.NATS.Token, c.NATS.TokenFile, true},
		{"invoke.oci.passphrase", "invoke.oci.passphrase_file", &c.Invoke.OCI.Passphrase, c.Invoke.OCI.PassphraseFile, true},
		{"", "http.token_file", &c.HTTP.Token, c.HTTP.TokenFile, false},
	}
}

// readSecretFiles fills each secret from its file, when one is named. A
// trailing newline is dropped, as editors and `echo` add one. Errors name
// the key and file, never what the file holds.
func readSecretFiles(c *Config) error {
	var errs []error
	for _, s := range c.secretsFromFiles() {
		if s.file == "" {
			continue
		}
		if s.inline && *s.value != "" {
			errs = append(errs, &KeyError{Key: s.fileKey, Err: fmt.Errorf("set either %s or %s, not both", s.key, s.fileKey)})
			continue
		}
		data, err := os.ReadFile(s.file)
		if err != nil {
			errs = append(errs, &KeyError{Key: s.fileKey, Err: err})
			continue
		}
		v := strings.TrimRight(string(data), "\r\n")
		switch {
		case v == "":
			errs = append(errs, &KeyError{Key: s.fileKey, Err: fmt.Errorf("%s is empty", s.file)})
			continue
		case !s.inline && len(v) < MinAdminTokenLength:
			errs = append(errs, &KeyError{Key: s.fileKey, Err: fmt.Errorf("the token in %s is shorter than %d characters", s.file, MinAdminTokenLength)})
			continue
		}
		*s.value = v
	}
	return errors.Join(errs...)
}

// hasInlineSecret reports whether c holds a secret value itself (as read
// from the YAML file), rather than the name of a file holding it.
func (c *Config) hasInlineSecret() bool {
	return c.NATS.Password != "" || c.NATS.Token != "" || c.Invoke.OCI.Passphrase != "" || strings.Contains(c.NATS.URL, "@")
}

// exposedFiles returns a warning for each file holding a secret that the
// group or others may read: the credential files the keys name, and the
// configuration file when it holds a secret itself. They are warnings,
// not errors, because container platforms mount secrets group- or
// world-readable by default (Kubernetes Secret volumes are 0644 unless
// defaultMode says otherwise) inside a container that runs one user.
func exposedFiles(c Config, configFile string, configHasSecret bool) []string {
	if runtime.GOOS == "windows" {
		return nil // no such mode bits
	}
	files := []struct{ key, path string }{
		{"nats.creds", c.NATS.Creds},
		{"nats.nkey", c.NATS.NKey},
		{"nats.tls.key", c.NATS.TLS.Key},
		{"nats.password_file", c.NATS.PasswordFile},
		{"nats.token_file", c.NATS.TokenFile},
		{"invoke.oci.passphrase_file", c.Invoke.OCI.PassphraseFile},
		{"http.token_file", c.HTTP.TokenFile},
	}
	if configHasSecret {
		files = append(files, struct{ key, path string }{"--config", configFile})
	}
	var out []string
	for _, f := range files {
		if f.path == "" {
			continue
		}
		info, err := os.Stat(expandHome(f.path))
		if err != nil {
			continue // the component reading it reports that
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			out = append(out, fmt.Sprintf("%s: %s holds a secret and can be read by group or others (mode %04o); make it 0600 or 0400, owned by the worker's user", f.key, f.path, perm))
		}
	}
	return out
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// onCommandLine warns about a secret given as an override, where every
// user of the machine can read it (ps, /proc/<pid>/cmdline).
func onCommandLine(o Override) string {
	const exposed = "is set on the command line, where other users of the machine can read it"
	switch {
	case o.Value == "":
		return ""
	case o.Key == "nats.url" && strings.Contains(o.Value, "@"):
		return fmt.Sprintf("nats.url holds credentials and %s; use nats.user with nats.password_file, or nats.token_file, instead", exposed)
	case slices.Contains(secretKeys, o.Key):
		return fmt.Sprintf("%s %s; use %s or %s_file instead", o.Key, exposed, EnvName(o.Key), o.Key)
	}
	return ""
}
