package invoke

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/functions"
)

// OCI's published request-signing test vector (docs "Request Signatures",
// reproduced in the OCI Go SDK's http_signer_test.go); see
// shared/research/oci-invoke.md §2.7.
const (
	vectorKey = `-----BEGIN RSA PRIVATE KEY-----
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
-----END RSA PRIVATE KEY-----`
	vectorTenancy     = "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq"
	vectorUser        = "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq"
	vectorFingerprint = "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"
	vectorDate        = "Thu, 05 Jan 2014 21:31:40 GMT"
	vectorBody        = "{\n    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n}"
	vectorBodyHash    = "V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0="
	vectorPOSTSig     = "Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmrWso="
)

// TestSignerMatchesOCITestVector proves the signer Invoke uses (the SDK's,
// told that the body hash is already set) produces OCI's published
// signature for the published POST request, byte for byte.
func TestSignerMatchesOCITestVector(t *testing.T) {
	t.Parallel()
	if len(vectorBody) != 316 {
		t.Fatalf("vector body is %d bytes, want 316", len(vectorBody))
	}
	if got := bodyHash([]byte(vectorBody)); got != vectorBodyHash {
		t.Fatalf("body hash %s, want %s", got, vectorBodyHash)
	}
	kp := common.NewRawConfigurationProvider(vectorTenancy, vectorUser, "us-phoenix-1", vectorFingerprint, vectorKey, nil)
	req, err := http.NewRequest(http.MethodPost, "https://iaas.us-phoenix-1.oraclecloud.com/20160918/volumeAttachments", bytes.NewReader([]byte(vectorBody)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Date", vectorDate)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", "316")
	req.Header.Set("X-Content-Sha256", bodyHash([]byte(vectorBody)))
	if err := NewKeySigner(kp).Sign(req); err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	want := `Signature version="1",headers="date (request-target) host content-length content-type x-content-sha256",keyId="` +
		vectorTenancy + "/" + vectorUser + "/" + vectorFingerprint + `",algorithm="rsa-sha256",signature="` + vectorPOSTSig + `"`
	if auth != want {
		t.Fatalf("Authorization\n got: %s\nwant: %s", auth, want)
	}
}

// TestAPIVersionDefaultIsTheSDKs keeps APIVersionDefault equal to the path
// version the OCI Go SDK in go.mod sends.
func TestAPIVersionDefaultIsTheSDKs(t *testing.T) {
	t.Parallel()
	kp := common.NewRawConfigurationProvider(vectorTenancy, vectorUser, "us-phoenix-1", vectorFingerprint, vectorKey, nil)
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
