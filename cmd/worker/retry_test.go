package main

import (
	"testing"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/invoke"
)

// TestShippedRetryPolicyRetries409AsTheOCISDKDoes: docs/contract.md
// promises that a 409 IncorrectState or LockConflict is retried, as the OCI
// SDK's default policy does, and any other 409 is permanent; this holds
// the configuration `worker run` uses, and the library's default, to it.
func TestShippedRetryPolicyRetries409AsTheOCISDKDoes(t *testing.T) {
	t.Parallel()
	for name, on := range map[string][]string{"config": config.Default().Retry.On, "invoke": invoke.RetryOnDefault()} {
		p, err := invoke.NewRetryPolicy(on, nil)
		if err != nil {
			t.Fatal(err)
		}
		for code, want := range map[string]bool{"IncorrectState": true, "LockConflict": true, "Conflict": false} {
			if got := p.Retryable(&invoke.Error{Status: 409, Code: code}); got != want {
				t.Errorf("%s default: 409 %s retryable %v, want %v", name, code, got, want)
			}
		}
	}
}
