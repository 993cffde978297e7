package invoke

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/functions"

	"github.com/invoke-worker/worker/invoke/internal/ocivector"
)

// TestSignerMatchesOCITestVector proves the signer Invoke uses (the SDK's,
// told that the body hash is already set) produces OCI's published
// signature for the published POST request, byte for byte.
func TestSignerMatchesOCITestVector(t *testing.T) {
	t.Parallel()
	if len(ocivector.PostBody) != 316 {
		t.Fatalf("vector body is %d bytes, want 316", len(ocivector.PostBody))
	}
	if got := bodyHash([]byte(ocivector.PostBody)); got != ocivector.PostBodySHA256 {
		t.Fatalf("body hash %s, want %s", got, ocivector.PostBodySHA256)
	}
	kp := common.NewRawConfigurationProvider(ocivector.Tenancy, ocivector.User, "us-phoenix-1", ocivector.Fingerprint, ocivector.KeyPEM, nil)
	req, err := http.NewRequest(http.MethodPost, ocivector.PostURL, bytes.NewReader([]byte(ocivector.PostBody)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Date", ocivector.Date)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", "316")
	req.Header.Set("X-Content-Sha256", bodyHash([]byte(ocivector.PostBody)))
	if err := NewKeySigner(kp).Sign(req); err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	want := `Signature version="1",headers="` + ocivector.PostHeaders + `",keyId="` +
		ocivector.KeyID + `",algorithm="rsa-sha256",signature="` + ocivector.PostSignature + `"`
	if auth != want {
		t.Fatalf("Authorization\n got: %s\nwant: %s", auth, want)
	}
}

// TestAPIVersionDefaultIsTheSDKs keeps APIVersionDefault equal to the path
// version the OCI Go SDK in go.mod sends.
func TestAPIVersionDefaultIsTheSDKs(t *testing.T) {
	t.Parallel()
	kp := common.NewRawConfigurationProvider(ocivector.Tenancy, ocivector.User, "us-phoenix-1", ocivector.Fingerprint, ocivector.KeyPEM, nil)
	c, err := functions.NewFunctionsInvokeClientWithConfigurationProvider(kp, "https://example.invalid")
	if err != nil {
		t.Fatal(err)
	}
	if c.BasePath != APIVersionDefault {
		t.Fatalf("SDK sends %q, APIVersionDefault is %q", c.BasePath, APIVersionDefault)
	}
	if !regexp.MustCompile(`^\d{8}$`).MatchString(APIVersionDefault) {
		t.Fatalf("odd API version %q", APIVersionDefault)
	}
}
