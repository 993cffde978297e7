package emulator

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/invoke-worker/worker/invoke/internal/ocivector"
)

func vectorPublicKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode([]byte(ocivector.KeyPEM))
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func vectorNow(t *testing.T) time.Time {
	t.Helper()
	now, err := time.Parse(http.TimeFormat, ocivector.Date)
	if err != nil {
		t.Fatal(err)
	}
	return now
}

func vectorPostRequest(signature string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, ocivector.PostURL, strings.NewReader(ocivector.PostBody))
	r.Header.Set("Date", ocivector.Date)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "316")
	r.Header.Set("X-Content-Sha256", ocivector.PostBodySHA256)
	// Python SDK parameter order, to show order does not matter.
	r.Header.Set("Authorization", `Signature algorithm="rsa-sha256",headers="`+ocivector.PostHeaders+`",keyId="`+ocivector.KeyID+`",signature="`+signature+`",version="1"`)
	return r
}

func TestVectorPost(t *testing.T) {
	if len(ocivector.PostBody) != 316 {
		t.Fatalf("vector body is %d bytes, want 316", len(ocivector.PostBody))
	}
	r := vectorPostRequest(ocivector.PostSignature)
	if got := SigningString(r, strings.Fields(ocivector.PostHeaders)); got != ocivector.PostSigningString {
		t.Fatalf("signing string:\n%s\nwant:\n%s", got, ocivector.PostSigningString)
	}
	pub := vectorPublicKey(t)
	now := vectorNow(t)
	if err := VerifyRequest(r, []byte(ocivector.PostBody), pub, now, 5*time.Minute); err != nil {
		t.Fatalf("documented POST signature rejected: %v", err)
	}
	_, err := verifyRequest(r, []byte(ocivector.PostBody), pub, ocivector.KeyID, now, 0)
	if err != nil {
		t.Fatalf("with key id check: %v", err)
	}
	_, err = verifyRequest(r, []byte(ocivector.PostBody), pub, "other/key/id", now, 0)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key id: %v", err)
	}

	// Same request, clock 10 minutes later.
	err = VerifyRequest(r, []byte(ocivector.PostBody), pub, now.Add(10*time.Minute), 5*time.Minute)
	if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrClockSkew) {
		t.Fatalf("skewed clock: %v", err)
	}
	// Tampered body.
	tampered := strings.Replace(ocivector.PostBody, "phx", "iad", 1)
	err = VerifyRequest(r, []byte(tampered), pub, now, 0)
	if !errors.Is(err, ErrBodyMismatch) {
		t.Fatalf("tampered body: %v", err)
	}
	// Signature of the GET used for the POST.
	err = VerifyRequest(vectorPostRequest(ocivector.GetSignature), []byte(ocivector.PostBody), pub, now, 0)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong signature: %v", err)
	}
	if strings.Contains(err.Error(), ocivector.GetSignature[:16]) {
		t.Fatal("error message contains the signature")
	}
}

func TestVectorGet(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, ocivector.GetURL, nil)
	r.Header.Set("Date", ocivector.Date)
	r.Header.Set("Authorization", `Signature version="1",headers="date (request-target) host",keyId="`+ocivector.KeyID+`",algorithm="rsa-sha256",signature="`+ocivector.GetSignature+`"`)
	if got := SigningString(r, []string{"date", "(request-target)", "host"}); got != ocivector.GetSigningString {
		t.Fatalf("signing string:\n%s\nwant:\n%s", got, ocivector.GetSigningString)
	}
	if err := VerifyRequest(r, nil, vectorPublicKey(t), vectorNow(t), 0); err != nil {
		t.Fatalf("documented GET signature rejected: %v", err)
	}
}

// TestVectorSDKSigner checks the other direction: the SDK signer, given the
// vector key, produces the documented POST signature, so the emulator and
// the SDK agree on the scheme and not only on this implementation.
func TestVectorSDKSigner(t *testing.T) {
	r, err := http.NewRequest(http.MethodPost, ocivector.PostURL, strings.NewReader(ocivector.PostBody))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Date", ocivector.Date)
	r.Header.Set("Content-Type", "application/json")
	p := common.NewRawConfigurationProvider(ocivector.Tenancy, ocivector.User, "us-phoenix-1", ocivector.Fingerprint, ocivector.KeyPEM, nil)
	if err := common.DefaultRequestSigner(p).Sign(r); err != nil {
		t.Fatal(err)
	}
	params, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if params.Signature != ocivector.PostSignature || params.KeyID != ocivector.KeyID || strings.Join(params.Headers, " ") != ocivector.PostHeaders {
		t.Fatalf("SDK produced %v with another signature than documented", params)
	}
	if strings.Contains(params.String(), params.Signature) {
		t.Fatal("SignatureParams.String leaks the signature")
	}
}

func TestParseAuthorization(t *testing.T) {
	good := `Signature version="1",headers="Date (request-target) host",keyId="a/b/c",algorithm="rsa-sha256",signature="c2ln",extra="x"`
	p, err := ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "1" || p.KeyID != "a/b/c" || p.Algorithm != "rsa-sha256" || p.Signature != "c2ln" ||
		strings.Join(p.Headers, ",") != "date,(request-target),host" {
		t.Fatalf("parsed %+v", p)
	}
	bad := []string{
		"",
		"Bearer abc",
		`Signature version="1"`,
		`Signature version="1",headers="date",keyId="k",algorithm="rsa-sha256",signature="s",version="1"`,
		`Signature version=1,headers="date",keyId="k",algorithm="rsa-sha256",signature="s"`,
		`Signature version="1" headers="date",keyId="k",algorithm="rsa-sha256",signature="s"`,
		`Signature version="1",headers="date",keyId="k",algorithm="rsa-sha256",signature="s`,
		`Signature version="1",headers="date",keyId="k",algorithm="rsa-sha256",signature="s",`,
	}
	for _, v := range bad {
		if _, err := ParseAuthorization(v); !errors.Is(err, ErrMalformedSignature) || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("ParseAuthorization(%q) = %v, want ErrMalformedSignature", v, err)
		}
	}
}

func TestVerifyRequestChecks(t *testing.T) {
	pub := vectorPublicKey(t)
	now := vectorNow(t)
	body := []byte(ocivector.PostBody)
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		want   error
	}{
		{"no authorization", func(r *http.Request) { r.Header.Del("Authorization") }, ErrMalformedSignature},
		{"version 2", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `version="1"`, `version="2"`, 1))
		}, ErrMalformedSignature},
		{"algorithm", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `rsa-sha256`, `hmac-sha256`, 1))
		}, ErrMalformedSignature},
		{"body headers unsigned", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ocivector.PostHeaders, "date (request-target) host", 1))
		}, ErrMalformedSignature},
		{"no date", func(r *http.Request) { r.Header.Del("Date") }, ErrClockSkew},
		{"bad date", func(r *http.Request) { r.Header.Set("Date", "yesterday") }, ErrClockSkew},
		{"content-length", func(r *http.Request) { r.Header.Set("Content-Length", "317") }, ErrBodyMismatch},
		{"sha", func(r *http.Request) {
			r.Header.Set("X-Content-Sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
		}, ErrBodyMismatch},
		{"signed header changed", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, ErrBadSignature},
		{"host changed", func(r *http.Request) { r.Host = "evil.example.com" }, ErrBadSignature},
	}
	for _, c := range cases {
		r := vectorPostRequest(ocivector.PostSignature)
		c.mutate(r)
		err := VerifyRequest(r, body, pub, now, 0)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// RFC 1123 with a numeric zone is accepted too.
	r := vectorPostRequest(ocivector.PostSignature)
	if err := checkDate(now.Format(time.RFC1123), now, 0); err != nil {
		t.Errorf("RFC1123 date: %v", err)
	}
	if err := VerifyRequest(r, body, nil, now, 0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("nil key: %v", err)
	}
}

func TestLoadPublicKey(t *testing.T) {
	pub := vectorPublicKey(t)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range []*pem.Block{
		{Type: "PUBLIC KEY", Bytes: pkix},
		{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)},
	} {
		got, err := LoadPublicKey(pem.EncodeToMemory(block))
		if err != nil {
			t.Fatalf("%s: %v", block.Type, err)
		}
		if !got.Equal(pub) {
			t.Fatalf("%s: different key", block.Type)
		}
	}
	for _, in := range [][]byte{nil, []byte("not pem"), []byte(ocivector.KeyPEM), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})} {
		if _, err := LoadPublicKey(in); err == nil {
			t.Fatalf("LoadPublicKey accepted %q", in)
		}
	}
}
