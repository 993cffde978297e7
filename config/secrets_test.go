package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// TestSecretsComeFromFiles: each *_file key fills its secret, without the
// trailing newline editors add; Redacted hides what was read.
func TestSecretsComeFromFiles(t *testing.T) {
	t.Parallel()
	pw := writeSecret(t, "pw-from-file\n", 0o600)
	tok := writeSecret(t, "nats-token-from-file\r\n", 0o600)
	pass := writeSecret(t, "passphrase-from-file", 0o600)
	admin := writeSecret(t, "admin-token-0123456789\n", 0o400)
	cfg := mustLoad(t, LoadOptions{Environ: []string{
		"WORKER_NATS_USER=w", "WORKER_NATS_PASSWORD_FILE=" + pw, "WORKER_NATS_TOKEN_FILE=" + tok,
		"WORKER_INVOKE_OCI_PASSPHRASE_FILE=" + pass, "WORKER_HTTP_TOKEN_FILE=" + admin,
	}})
	got := []string{cfg.NATS.Password, cfg.NATS.Token, cfg.Invoke.OCI.Passphrase, cfg.HTTP.Token}
	want := []string{"pw-from-file", "nats-token-from-file", "passphrase-from-file", "admin-token-0123456789"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("secret %d: got %q, want %q", i, got[i], want[i])
		}
	}
	r := cfg.Redacted()
	for _, s := range []string{r.NATS.Password, r.NATS.Token, r.Invoke.OCI.Passphrase, r.HTTP.Token} {
		if s != redactedValue {
			t.Errorf("Redacted left %q", s)
		}
	}
}

// TestSecretFileErrorsNameTheKeyNotTheSecret: both forms at once, an
// unreadable or empty file and a short admin token are configuration
// errors naming the key; none repeats a secret.
func TestSecretFileErrorsNameTheKeyNotTheSecret(t *testing.T) {
	t.Parallel()
	short := writeSecret(t, "short-secret\n", 0o600)
	cases := map[string]struct {
		env  []string
		want string
	}{
		"both":    {[]string{"WORKER_NATS_TOKEN=inline-secret", "WORKER_NATS_TOKEN_FILE=" + short}, "nats.token_file: set either nats.token or nats.token_file"},
		"missing": {[]string{"WORKER_NATS_PASSWORD_FILE=/nonexistent/pw", "WORKER_NATS_USER=u"}, "nats.password_file: open /nonexistent/pw"},
		"empty":   {[]string{"WORKER_INVOKE_OCI_PASSPHRASE_FILE=" + writeSecret(t, "\n", 0o600)}, "invoke.oci.passphrase_file:"},
		"short":   {[]string{"WORKER_HTTP_TOKEN_FILE=" + short}, "http.token_file: the token in " + short + " is shorter than 16"},
	}
	for name, c := range cases {
		_, err := Load(LoadOptions{Environ: c.env})
		switch {
		case err == nil:
			t.Errorf("%s: loaded", name)
		case !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v does not wrap ErrInvalid", name, err)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v; want %q", name, err, c.want)
		case strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "inline-secret"):
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

// TestAdminTokenHasNoInlineForm: the admin token is read from a file only,
// never from the YAML, the environment or --set.
func TestAdminTokenHasNoInlineForm(t *testing.T) {
	t.Parallel()
	if _, err := Load(LoadOptions{File: writeFile(t, "http:\n  token: abcdefghijklmnopqrstuvwxyz\n")}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("http.token in the file: %v, want an unknown key", err)
	}
	if _, err := Load(LoadOptions{Environ: []string{"WORKER_HTTP_TOKEN=abcdefghijklmnopqrstuvwxyz"}}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("WORKER_HTTP_TOKEN: %v, want an unknown key", err)
	}
	if _, err := Load(LoadOptions{Overrides: []Override{{Key: "http.token", Value: "abcdefghijklmnopqrstuvwxyz"}}}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("--set http.token: %v, want an unknown key", err)
	}
}

// TestPprofBeyondLoopbackNeedsAToken: /debug/pprof on a non-loopback
// address is refused without http.token_file.
func TestPprofBeyondLoopbackNeedsAToken(t *testing.T) {
	t.Parallel()
	tok := writeSecret(t, "admin-token-0123456789", 0o600)
	for _, c := range []struct {
		listen, tokenFile string
		ok                bool
	}{
		{"127.0.0.1:9090", "", true},
		{"localhost:9090", "", true},
		{"[::1]:9090", "", true},
		{"0.0.0.0:9090", "", false},
		{":9090", "", false},
		{"10.0.0.5:9090", "", false},
		{"0.0.0.0:9090", tok, true},
	} {
		_, err := Load(LoadOptions{Environ: []string{"WORKER_HTTP_PPROF=true", "WORKER_HTTP_LISTEN=" + c.listen, "WORKER_HTTP_TOKEN_FILE=" + c.tokenFile}})
		if (err == nil) != c.ok {
			t.Errorf("pprof on %s, token file %q: error %v, want ok=%v", c.listen, c.tokenFile, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "http.pprof") {
			t.Errorf("error does not name http.pprof: %v", err)
		}
	}
}

// TestExposedSecretsAreWarnedAbout: a credential file or a configuration
// file holding a secret that group or others can read, and a secret on
// the command line, each get a warning naming the key and file, never
// the secret; private files and secrets from the environment get none.
func TestExposedSecretsAreWarnedAbout(t *testing.T) {
	t.Parallel()
	load := func(opts LoadOptions) []string {
		t.Helper()
		var warnings []string
		opts.Warn = func(w string) { warnings = append(warnings, w) }
		mustLoad(t, opts)
		for _, w := range warnings {
			if strings.Contains(w, "s3cr3t") {
				t.Errorf("warning shows the secret: %s", w)
			}
		}
		return warnings
	}
	open := writeSecret(t, "s3cr3t-token", 0o644)
	private := writeSecret(t, "s3cr3t-token", 0o600)
	nkey := writeSecret(t, "SUAs3cr3t", 0o640)
	if w := load(LoadOptions{Environ: []string{"WORKER_NATS_TOKEN_FILE=" + private, "WORKER_NATS_PASSWORD=s3cr3t", "WORKER_NATS_USER=u"}}); len(w) != 0 {
		t.Errorf("private file and environment: warnings %q", w)
	}
	w := load(LoadOptions{Environ: []string{"WORKER_NATS_TOKEN_FILE=" + open, "WORKER_NATS_NKEY=" + nkey}})
	if len(w) != 2 || !strings.Contains(w[0], "nats.nkey: "+nkey) || !strings.Contains(w[0], "mode 0640") || !strings.Contains(w[1], "nats.token_file: "+open) {
		t.Errorf("exposed files: warnings %q", w)
	}

	yamlSecret := writeFile(t, "nats:\n  token: s3cr3t\n")
	if err := os.Chmod(yamlSecret, 0o644); err != nil {
		t.Fatal(err)
	}
	if w := load(LoadOptions{File: yamlSecret}); len(w) != 1 || !strings.Contains(w[0], "--config: "+yamlSecret) {
		t.Errorf("readable config file with a secret: warnings %q", w)
	}
	yamlPlain := writeFile(t, "nats:\n  token_file: "+private+"\n")
	if err := os.Chmod(yamlPlain, 0o644); err != nil {
		t.Fatal(err)
	}
	if w := load(LoadOptions{File: yamlPlain}); len(w) != 0 {
		t.Errorf("readable config file without a secret: warnings %q", w)
	}

	w = load(LoadOptions{Overrides: []Override{{Key: "nats.token", Value: "s3cr3t"}, {Key: "nats.url", Value: "nats://u:s3cr3t@host:4222"}}})
	if len(w) != 2 || !strings.Contains(w[0], "nats.token is set on the command line") || !strings.Contains(w[0], "WORKER_NATS_TOKEN") ||
		!strings.Contains(w[1], "nats.url holds credentials") {
		t.Errorf("command line: warnings %q", w)
	}
}
