package invoke

import (
	"fmt"
	"testing"
)

// TestInvokeURLMemoryIsBounded: invoking many distinct functions does not
// grow the remembered URLs past maxCachedURLs.
func TestInvokeURLMemoryIsBounded(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Resolver: StaticEndpoints{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * maxCachedURLs {
		fn := fmt.Sprintf("ocid1.fnfunc.oc1.phx.aaaa%06d", i)
		if got, want := c.invokeURL("http://127.0.0.1:1", fn), c.URL("http://127.0.0.1:1", fn); got != want {
			t.Fatalf("URL %q, want %q", got, want)
		}
	}
	n := 0
	c.urls.Range(func(any, any) bool { n++; return true })
	if n > maxCachedURLs {
		t.Fatalf("%d URLs remembered, over %d", n, maxCachedURLs)
	}
}
