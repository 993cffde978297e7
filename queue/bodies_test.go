package queue_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

func TestBodiesStoreFetchAndDelete(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	b := queue.NewBodies(n.JS, n.Topology)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	body := bytes.Repeat([]byte("0123456789"), 50_000)

	ref, err := b.PutJob(ctx, "job-1", body)
	if err != nil {
		t.Fatal(err)
	}
	if bucket, _, err := queue.ParseBodyRef(ref); err != nil || bucket != queue.JobBodiesDefault {
		t.Fatalf("ref %q: %s, %v", ref, bucket, err)
	}
	got, err := b.Get(ctx, ref, 0)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	if _, err := b.Get(ctx, ref, int64(len(body)-1)); !errors.Is(err, queue.ErrBodyObject) || !errors.Is(err, job.ErrInvalid) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := b.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, ref); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := b.Get(ctx, ref, 0); !errors.Is(err, queue.ErrBodyObject) {
		t.Fatalf("deleted object: %v", err)
	}
	for _, bad := range []string{"", "nobucket", "/name", "bucket/", "bu.cket/x"} {
		if _, err := b.Get(ctx, bad, 0); !errors.Is(err, queue.ErrBodyObject) {
			t.Errorf("ref %q: %v", bad, err)
		}
	}
	if _, err := b.Get(ctx, "NO_SUCH_BUCKET/x", 0); !errors.Is(err, queue.ErrBodyObject) {
		t.Errorf("missing bucket: %v", err)
	}
	ref, err = b.PutResult(ctx, "job-1", []byte("result"))
	if err != nil || ref != queue.ResultBodiesDefault+"/results/job-1" {
		t.Fatalf("result ref %q, %v", ref, err)
	}
}
