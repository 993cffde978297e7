package httpfield

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestAgreesWithTheTransport sends a request with each byte in a header
// value and in a header name through Go's own transport, to a port nothing
// listens on: the transport refuses an invalid header before it dials, so
// "invalid header field" errors tell exactly which bytes it refuses.
func TestAgreesWithTheTransport(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there now: a valid request fails to dial
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	refused := func(h http.Header, what string) bool {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("something answered on %s", url)
		}
		return strings.Contains(err.Error(), "invalid header field "+what)
	}
	for b := 0; b < 256; b++ {
		v := "a" + string([]byte{byte(b)}) + "b"
		if got, want := ValidValue(v), !refused(http.Header{"X-Test": {v}}, "value"); got != want {
			t.Errorf("value with byte %#02x: ValidValue %v, transport accepts %v", b, got, want)
		}
		k := "X" + string([]byte{byte(b)}) + "Y"
		if got, want := ValidName(k), !refused(http.Header{k: {"v"}}, "name"); got != want {
			t.Errorf("name with byte %#02x: ValidName %v, transport accepts %v", b, got, want)
		}
	}
	if ValidName("") {
		t.Error("empty name is valid")
	}
	if !ValidValue("") {
		t.Error("empty value is invalid")
	}
}
