package worker

import (
	"testing"
	"time"
)

// TestWithDefaultsKeepsMeaningfulZeros: Retry.MaxElapsed 0 is no limit and
// Retry.Randomization 0 no jitter, so withDefaults keeps them; the other
// zero fields of Retry and Breaker take the Default* values.
func TestWithDefaultsKeepsMeaningfulZeros(t *testing.T) {
	t.Parallel()
	c := Config{}.withDefaults()
	want := DefaultRetryConfig()
	want.MaxElapsed, want.Randomization = 0, 0
	if c.Retry != want {
		t.Errorf("Retry: %+v, want %+v", c.Retry, want)
	}
	b, wb := c.Breaker, DefaultBreakerConfig()
	if b.Mode != wb.Mode || b.FailureRatio != wb.FailureRatio || b.MinRequests != wb.MinRequests ||
		b.Interval != wb.Interval || b.OpenTimeout != wb.OpenTimeout || b.HalfOpenRequests != wb.HalfOpenRequests {
		t.Errorf("Breaker: %+v, want %+v", b, wb)
	}
	if c.MaxJobAge != 0 || c.PerFunctionConcurrency != 0 || c.PerFunctionRate != 0 || c.WaitLogThreshold != 0 {
		t.Errorf("off switches turned on: %+v", c)
	}
	set := Config{Retry: RetryConfig{MaxElapsed: time.Minute, Randomization: 0.1}}.withDefaults()
	if set.Retry.MaxElapsed != time.Minute || set.Retry.Randomization != 0.1 {
		t.Errorf("set values changed: %+v", set.Retry)
	}
}
