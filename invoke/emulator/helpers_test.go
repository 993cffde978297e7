package emulator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/invoke-worker/worker/invoke/emulator"
)

const (
	testTenancy     = "ocid1.tenancy.oc1..test"
	testUser        = "ocid1.user.oc1..test"
	testFingerprint = "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"
	testKeyID       = testTenancy + "/" + testUser + "/" + testFingerprint
	testFn          = "ocid1.fnfunc.oc1.phx.test"
)

// testKey is one RSA key pair shared by the tests; generating 2048-bit keys
// is slow enough to matter under -race.
type testKey struct {
	priv *rsa.PrivateKey
	pem  string
}

var keys = sync.OnceValues(func() ([2]testKey, error) {
	var out [2]testKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return out, err
		}
		out[i] = testKey{k, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))}
	}
	return out, nil
})

// mainKey is the key the emulator trusts; otherKey is a stranger's.
func mainKey(t *testing.T) testKey {
	t.Helper()
	k, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	return k[0]
}

func otherKey(t *testing.T) testKey {
	t.Helper()
	k, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	return k[1]
}

// start runs an emulator on a free loopback port, closed at test end.
func start(t *testing.T, cfg emulator.Config) *emulator.Emulator {
	t.Helper()
	e, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// signedConfig trusts mainKey.
func signedConfig(t *testing.T) emulator.Config {
	return emulator.Config{PublicKey: &mainKey(t).priv.PublicKey, KeyID: testKeyID, RecordCalls: true}
}

func invokeURL(e *emulator.Emulator, fn string) string {
	return e.URL() + "/20260325/functions/" + fn + "/actions/invoke"
}

// newInvoke builds an unsigned invoke request.
func newInvoke(t *testing.T, ctx context.Context, url string, body []byte, contentType string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// sign signs req with the OCI SDK signer, as the production worker does.
func sign(t *testing.T, req *http.Request, k testKey) *http.Request {
	t.Helper()
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	p := common.NewRawConfigurationProvider(testTenancy, testUser, "us-phoenix-1", testFingerprint, k.pem, nil)
	if err := common.DefaultRequestSigner(p).Sign(req); err != nil {
		t.Fatal(err)
	}
	return req
}

// signedInvoke builds a signed invoke request with mainKey.
func signedInvoke(t *testing.T, e *emulator.Emulator, fn string, body []byte) *http.Request {
	t.Helper()
	return sign(t, newInvoke(t, context.Background(), invokeURL(e, fn), body, "application/octet-stream"), mainKey(t))
}

// result is a fully read response.
type result struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

// ociErr decodes an OCI error body and checks its content type.
func ociErr(t *testing.T, r result) (code, message string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, body %q", ct, r.body)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Code, e.Message
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// client returns a client with its own connection pool, closed at test end,
// so one test's dropped or hung connections cannot affect another.
func client(t *testing.T, timeout time.Duration) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}
