package queue_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// TestWithDefaultsKeepsUnlimitedAges: a max age of 0 is unlimited, as in
// JetStream, and WithDefaults keeps it; every other zero field takes
// DefaultTopology's value.
func TestWithDefaultsKeepsUnlimitedAges(t *testing.T) {
	t.Parallel()
	got := queue.Topology{}.WithDefaults()
	if got.JobsMaxAge != 0 || got.ResultsMaxAge != 0 || got.DLQMaxAge != 0 {
		t.Fatalf("max ages of 0 became %s, %s, %s", got.JobsMaxAge, got.ResultsMaxAge, got.DLQMaxAge)
	}
	want := queue.DefaultTopology()
	want.JobsMaxAge, want.ResultsMaxAge, want.DLQMaxAge = 0, 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Topology{}.WithDefaults():\n%+v\nwant DefaultTopology() with unlimited ages:\n%+v", got, want)
	}
	for _, sc := range got.Streams() {
		if sc.MaxAge != 0 {
			t.Errorf("stream %s: max age %s, want 0", sc.Name, sc.MaxAge)
		}
	}
	for _, bc := range got.BodyBuckets() {
		if bc.TTL != 0 {
			t.Errorf("bucket %s: TTL %s, want 0", bc.Bucket, bc.TTL)
		}
	}
	set := queue.Topology{ResultsMaxAge: time.Hour, DLQMaxAge: 2 * time.Hour}.WithDefaults()
	if set.ResultsMaxAge != time.Hour || set.DLQMaxAge != 2*time.Hour {
		t.Fatalf("set ages changed: %s, %s", set.ResultsMaxAge, set.DLQMaxAge)
	}
}

func TestDefaultTopologyIsFresh(t *testing.T) {
	t.Parallel()
	a := queue.DefaultTopology()
	a.JobsSubjects[0] = "changed"
	if queue.DefaultTopology().JobsSubjects[0] != job.JobsSubjectDefault {
		t.Fatal("DefaultTopology shares its subjects between calls")
	}
}
