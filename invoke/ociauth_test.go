package invoke_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
)

// writeEncryptedConfig writes the test key encrypted with passphrase, and
// an OCI config for it in profile WORKERS (pass_phrase in the file when
// inFile).
func writeEncryptedConfig(t *testing.T, passphrase string, inFile bool) (string, devcreds.Credentials) {
	t.Helper()
	dir := t.TempDir()
	creds := testenv.Credentials(t)
	// Legacy encrypted PEM, as `openssl rsa -aes256` writes it: deprecated
	// in crypto/x509 for new uses, but it is what users' key files hold.
	//lint:ignore SA1019 the legacy format is what is being tested
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testenv.Key()), []byte(passphrase), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[DEFAULT]\nuser=ocid1.user.oc1..other\nfingerprint=00:00\ntenancy=ocid1.tenancy.oc1..other\nregion=us-ashburn-1\nkey_file=/nonexistent\n\n[WORKERS]\nuser=%s\nfingerprint=%s\ntenancy=%s\nregion=%s\nkey_file=%s\n",
		devcreds.User, creds.Fingerprint, devcreds.Tenancy, devcreds.Region, keyFile)
	if inFile {
		cfg += "pass_phrase=" + passphrase + "\n"
	}
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, creds
}

// TestPassphraseProtectedKeySignsRequestsTheEmulatorAccepts covers an
// encrypted key unlocked by the config file's pass_phrase and by
// invoke.oci.passphrase, in a profile other than DEFAULT; a wrong
// passphrase fails at start-up without echoing it.
func TestPassphraseProtectedKeySignsRequestsTheEmulatorAccepts(t *testing.T) {
	t.Parallel()
	const secret = "correct horse battery staple"
	for _, inFile := range []bool{true, false} {
		path, creds := writeEncryptedConfig(t, secret, inFile)
		emu := testenv.StartEmulator(t, creds, nil)
		auth := invoke.OCIAuth{ConfigFile: path, Profile: "WORKERS"}
		if !inFile {
			auth.Passphrase = secret
		}
		signer, err := invoke.NewOCISigner(auth)
		if err != nil {
			t.Fatalf("inFile=%v: %v", inFile, err)
		}
		client, err := invoke.New(invoke.Config{Resolver: invoke.StaticEndpoints{"ocid1.fnfunc.oc1.phx.aaaa": emu.URL()}, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Invoke(context.Background(), invoke.Request{FunctionID: "ocid1.fnfunc.oc1.phx.aaaa", Body: []byte("locked")})
		if err != nil || string(resp.Body) != "locked" {
			t.Fatalf("inFile=%v: %v", inFile, err)
		}
		client.CloseIdleConnections()
	}
	path, _ := writeEncryptedConfig(t, secret, false)
	_, err := invoke.NewOCISigner(invoke.OCIAuth{ConfigFile: path, Profile: "WORKERS", Passphrase: "wrong passphrase"})
	if !errors.Is(err, invoke.ErrCredentials) {
		t.Fatalf("wrong passphrase: %v, want ErrCredentials", err)
	}
	if strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("the error echoes the passphrase: %v", err)
	}
}
