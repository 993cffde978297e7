// Package devcreds owns throwaway OCI API-key credentials for local work:
// an RSA key pair and an OCI config file that points at it, written the way
// `oci setup config` would, so the worker signs with the same code path it
// uses against OCI, and the emulator verifies with the public half.
package devcreds

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Identities written into the dev OCI config: shaped like real OCIDs, valid
// nowhere.
const (
	Tenancy = "ocid1.tenancy.oc1..aaaaaaaadevtenancy"
	User    = "ocid1.user.oc1..aaaaaaaadevuser"
	Region  = "us-phoenix-1"
	Profile = "DEFAULT"
)

// Credentials are the files of a dev identity.
type Credentials struct {
	ConfigFile     string // OCI config file
	PrivateKeyFile string
	PublicKeyFile  string
	Fingerprint    string
	PublicKey      *rsa.PublicKey
}

// KeyID is the keyId the worker will sign with.
func (c Credentials) KeyID() string { return Tenancy + "/" + User + "/" + c.Fingerprint }

// Ensure returns the credentials in dir, creating them (RSA 2048) when
// missing, so repeated `worker dev` runs keep one identity.
func Ensure(dir string) (Credentials, error) {
	c := Credentials{
		ConfigFile:     filepath.Join(dir, "oci_config"),
		PrivateKeyFile: filepath.Join(dir, "oci_api_key.pem"),
		PublicKeyFile:  filepath.Join(dir, "oci_api_key_public.pem"),
	}
	if pub, err := os.ReadFile(c.PublicKeyFile); err == nil {
		if _, err := os.Stat(c.PrivateKeyFile); err == nil {
			if key, err := ParsePublicKey(pub); err == nil {
				return c.fill(key)
			}
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return c, fmt.Errorf("dev credentials: %w", err)
	}
	if err := Write(dir, key); err != nil {
		return c, err
	}
	return c.fill(&key.PublicKey)
}

func (c Credentials) fill(pub *rsa.PublicKey) (Credentials, error) {
	fp, err := Fingerprint(pub)
	if err != nil {
		return c, err
	}
	c.PublicKey, c.Fingerprint = pub, fp
	// Rewrite the config every time: it names absolute paths, and the data
	// directory may have moved.
	if err := writeConfig(c); err != nil {
		return c, err
	}
	return c, nil
}

// Write stores key and its public half in dir (the private key readable by
// the owner only) and writes the OCI config.
func Write(dir string, key *rsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(filepath.Join(dir, "oci_api_key.pem"), priv, 0o600); err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci_api_key_public.pem"), pub, 0o644); err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	return nil
}

func writeConfig(c Credentials) error {
	keyFile, err := filepath.Abs(c.PrivateKeyFile)
	if err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Throwaway credentials for `worker dev`; they sign requests to the local emulator only.\n")
	fmt.Fprintf(&b, "[%s]\nuser=%s\nfingerprint=%s\ntenancy=%s\nregion=%s\nkey_file=%s\n", Profile, User, c.Fingerprint, Tenancy, Region, keyFile)
	if err := os.WriteFile(c.ConfigFile, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("dev credentials: %w", err)
	}
	return nil
}

// Fingerprint is OCI's key fingerprint: MD5 of the DER public key, as
// colon-separated hex.
func Fingerprint(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":"), nil
}

// ParsePublicKey reads a PEM "PUBLIC KEY" or "RSA PUBLIC KEY".
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA public key")
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
}
