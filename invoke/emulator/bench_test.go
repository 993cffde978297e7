package emulator_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/invoke-worker/worker/invoke/emulator"
)

// BenchmarkInvokeHandler measures the per-call cost of the echo path
// without the network, i.e. the emulator's own overhead.
func BenchmarkInvokeHandler(b *testing.B) {
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h := e.Handler()
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/20260325/functions/f/actions/invoke", bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
