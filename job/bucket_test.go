package job_test

import (
	"strings"
	"testing"

	"github.com/invoke-worker/worker/job"
)

// TestBucketNames: the one rule for bucket names, as nats.go checks them
// (^[a-zA-Z0-9_-]+$), and the name made of a stream's.
func TestBucketNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"INVOKE_JOB_BODIES": true, "a-b_9": true, strings.Repeat("b", 200): true,
		"": false, "a.b": false, "a b": false, "a/b": false, "é": false, "a*": false,
	} {
		if got := job.ValidBucketName(s); got != want {
			t.Errorf("ValidBucketName(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]string{
		"INVOKE_DLQ_REPLAYS": "INVOKE_DLQ_REPLAYS",
		"dlq.v2 é_REPLAYS":   "dlq_v2___REPLAYS",
	} {
		if got := job.BucketName(s); got != want || !job.ValidBucketName(got) {
			t.Errorf("BucketName(%q) = %q, want %q", s, got, want)
		}
	}
}
