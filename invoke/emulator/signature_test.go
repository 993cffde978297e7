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
)

// OCI's published signing test vector (research notes §2.7; also in the Go
// SDK's common/http_signer_test.go).
const (
	vectorKeyPEM = `-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
`
	vectorTenancy     = "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq"
	vectorUser        = "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq"
	vectorFingerprint = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"
	vectorKeyID       = vectorTenancy + "/" + vectorUser + "/" + vectorFingerprint
	vectorDate        = "Thu, 05 Jan 2014 21:31:40 GMT"

	vectorGetURL           = "https://iaas.us-phoenix-1.oraclecloud.com/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q"
	vectorGetSigningString = "date: Thu, 05 Jan 2014 21:31:40 GMT\n" +
		"(request-target): get /20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\n" +
		"host: iaas.us-phoenix-1.oraclecloud.com"
	vectorGetSignature = "GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtLBj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOKHYPtrLJIJQHJjNvxFWeHQjMaR7M="

	vectorPostURL  = "https://iaas.us-phoenix-1.oraclecloud.com/20160918/volumeAttachments"
	vectorPostBody = "{\n" +
		"    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n" +
		"    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n" +
		"    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n" +
		"}"
	vectorPostSHA           = "V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0="
	vectorPostSigningString = "date: Thu, 05 Jan 2014 21:31:40 GMT\n" +
		"(request-target): post /20160918/volumeAttachments\n" +
		"host: iaas.us-phoenix-1.oraclecloud.com\n" +
		"content-length: 316\n" +
		"content-type: application/json\n" +
		"x-content-sha256: V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0="
	vectorPostSignature = "Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmrWso="
	vectorPostHeaders   = "date (request-target) host content-length content-type x-content-sha256"
)

func vectorPublicKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode([]byte(vectorKeyPEM))
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func vectorNow(t *testing.T) time.Time {
	t.Helper()
	now, err := time.Parse(http.TimeFormat, vectorDate)
	if err != nil {
		t.Fatal(err)
	}
	return now
}

func vectorPostRequest(signature string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, vectorPostURL, strings.NewReader(vectorPostBody))
	r.Header.Set("Date", vectorDate)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "316")
	r.Header.Set("X-Content-Sha256", vectorPostSHA)
	// Python SDK parameter order, to show order does not matter.
	r.Header.Set("Authorization", `Signature algorithm="rsa-sha256",headers="`+vectorPostHeaders+`",keyId="`+vectorKeyID+`",signature="`+signature+`",version="1"`)
	return r
}

func TestVectorPost(t *testing.T) {
	if len(vectorPostBody) != 316 {
		t.Fatalf("vector body is %d bytes, want 316", len(vectorPostBody))
	}
	r := vectorPostRequest(vectorPostSignature)
	if got := SigningString(r, strings.Fields(vectorPostHeaders)); got != vectorPostSigningString {
		t.Fatalf("signing string:\n%s\nwant:\n%s", got, vectorPostSigningString)
	}
	pub := vectorPublicKey(t)
	now := vectorNow(t)
	if err := VerifyRequest(r, []byte(vectorPostBody), pub, now, 5*time.Minute); err != nil {
		t.Fatalf("documented POST signature rejected: %v", err)
	}
	_, err := verifyRequest(r, []byte(vectorPostBody), pub, vectorKeyID, now, 0)
	if err != nil {
		t.Fatalf("with key id check: %v", err)
	}
	_, err = verifyRequest(r, []byte(vectorPostBody), pub, "other/key/id", now, 0)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key id: %v", err)
	}

	// Same request, clock 10 minutes later.
	err = VerifyRequest(r, []byte(vectorPostBody), pub, now.Add(10*time.Minute), 5*time.Minute)
	if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrClockSkew) {
		t.Fatalf("skewed clock: %v", err)
	}
	// Tampered body.
	tampered := strings.Replace(vectorPostBody, "phx", "iad", 1)
	err = VerifyRequest(r, []byte(tampered), pub, now, 0)
	if !errors.Is(err, ErrBodyMismatch) {
		t.Fatalf("tampered body: %v", err)
	}
	// Signature of the GET used for the POST.
	err = VerifyRequest(vectorPostRequest(vectorGetSignature), []byte(vectorPostBody), pub, now, 0)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong signature: %v", err)
	}
	if strings.Contains(err.Error(), vectorGetSignature[:16]) {
		t.Fatal("error message contains the signature")
	}
}

func TestVectorGet(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, vectorGetURL, nil)
	r.Header.Set("Date", vectorDate)
	r.Header.Set("Authorization", `Signature version="1",headers="date (request-target) host",keyId="`+vectorKeyID+`",algorithm="rsa-sha256",signature="`+vectorGetSignature+`"`)
	if got := SigningString(r, []string{"date", "(request-target)", "host"}); got != vectorGetSigningString {
		t.Fatalf("signing string:\n%s\nwant:\n%s", got, vectorGetSigningString)
	}
	if err := VerifyRequest(r, nil, vectorPublicKey(t), vectorNow(t), 0); err != nil {
		t.Fatalf("documented GET signature rejected: %v", err)
	}
}

// TestVectorSDKSigner checks the other direction: the SDK signer, given the
// vector key, produces the documented POST signature, so the emulator and
// the SDK agree on the scheme and not only on this implementation.
func TestVectorSDKSigner(t *testing.T) {
	r, err := http.NewRequest(http.MethodPost, vectorPostURL, strings.NewReader(vectorPostBody))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Date", vectorDate)
	r.Header.Set("Content-Type", "application/json")
	p := common.NewRawConfigurationProvider(vectorTenancy, vectorUser, "us-phoenix-1", vectorFingerprint, vectorKeyPEM, nil)
	if err := common.DefaultRequestSigner(p).Sign(r); err != nil {
		t.Fatal(err)
	}
	params, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if params.Signature != vectorPostSignature || params.KeyID != vectorKeyID || strings.Join(params.Headers, " ") != vectorPostHeaders {
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
	body := []byte(vectorPostBody)
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
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), vectorPostHeaders, "date (request-target) host", 1))
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
		r := vectorPostRequest(vectorPostSignature)
		c.mutate(r)
		err := VerifyRequest(r, body, pub, now, 0)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// RFC 1123 with a numeric zone is accepted too.
	r := vectorPostRequest(vectorPostSignature)
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
	for _, in := range [][]byte{nil, []byte("not pem"), []byte(vectorKeyPEM), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})} {
		if _, err := LoadPublicKey(in); err == nil {
			t.Fatalf("LoadPublicKey accepted %q", in)
		}
	}
}
