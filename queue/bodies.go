package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
)

// Bodies is the claim check for bodies too large for a NATS message: the
// body goes into a JetStream object store bucket and the message carries
// the reference "<bucket>/<name>" in the Invoke-Body-Object header, with an
// empty message body. Publishers store job bodies, workers fetch them
// before invoking and store results that do not fit a message.
//
// It is safe for concurrent use.
type Bodies struct {
	js           jetstream.JetStream
	jobBucket    string
	resultBucket string

	mu     sync.Mutex
	stores map[string]jetstream.ObjectStore
}

// NewBodies stores job bodies in t.JobBodies and results in t.ResultBodies
// (queue.Ensure creates both). It reads a reference to any bucket.
func NewBodies(js jetstream.JetStream, t Topology) *Bodies {
	t = t.WithDefaults()
	return &Bodies{js: js, jobBucket: t.JobBodies, resultBucket: t.ResultBodies, stores: map[string]jetstream.ObjectStore{}}
}

// ErrBodyObject wraps every error about a reference that can never be
// resolved: malformed, naming a bucket or object that does not exist (it
// aged out or was deleted), or holding more than the caller accepts. It
// also wraps job.ErrInvalid: a job whose body cannot be had cannot be run.
var ErrBodyObject = fmt.Errorf("%w: body object", job.ErrInvalid)

// ParseBodyRef splits an Invoke-Body-Object value into bucket and object
// name.
func ParseBodyRef(ref string) (bucket, name string, err error) {
	bucket, name, ok := strings.Cut(ref, "/")
	if !ok || name == "" || !job.ValidBucketName(bucket) {
		return "", "", fmt.Errorf("%w: %q is not <bucket>/<name>", ErrBodyObject, truncate(ref, 80))
	}
	return bucket, name, nil
}

// PutJob stores the body of job jobID and returns its reference. Each call
// stores a new object, so a job published again under the same id never
// has its body replaced under a running invocation; an object whose job
// was not published (or was a duplicate) ages out with the bucket.
func (b *Bodies) PutJob(ctx context.Context, jobID string, body []byte) (string, error) {
	return b.put(ctx, b.jobBucket, "jobs/"+jobID+"/"+NewJobID(), body)
}

// PutResult stores the result body of job jobID and returns its reference.
// The name is the job id, so storing a result again (after a redelivery)
// replaces the object rather than adding one.
func (b *Bodies) PutResult(ctx context.Context, jobID string, body []byte) (string, error) {
	return b.put(ctx, b.resultBucket, "results/"+jobID, body)
}

func (b *Bodies) put(ctx context.Context, bucket, name string, body []byte) (string, error) {
	obs, err := b.store(ctx, bucket)
	if err != nil {
		return "", err
	}
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(body)); err != nil {
		return "", fmt.Errorf("store body in %s: %w", bucket, err)
	}
	return bucket + "/" + name, nil
}

// Get returns the body ref refers to. maxSize > 0 refuses (with
// ErrBodyObject) an object larger than that before reading it. The
// object store checks the body's SHA-256 digest while reading.
func (b *Bodies) Get(ctx context.Context, ref string, maxSize int64) ([]byte, error) {
	bucket, name, err := ParseBodyRef(ref)
	if err != nil {
		return nil, err
	}
	obs, err := b.store(ctx, bucket)
	if err != nil {
		return nil, err
	}
	res, err := obs.Get(ctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("%w %s not found (aged out or deleted)", ErrBodyObject, ref)
		}
		return nil, fmt.Errorf("body object %s: %w", ref, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, fmt.Errorf("body object %s: %w", ref, err)
	}
	if maxSize > 0 && int64(info.Size) > maxSize {
		return nil, fmt.Errorf("%w %s is %d bytes, over the function request limit of %d bytes", ErrBodyObject, ref, info.Size, maxSize)
	}
	buf := bytes.NewBuffer(make([]byte, 0, info.Size))
	if _, err := io.Copy(buf, res); err != nil {
		return nil, fmt.Errorf("body object %s: %w", ref, err)
	}
	return buf.Bytes(), nil
}

// Delete removes the object ref refers to; one already gone is not an
// error.
func (b *Bodies) Delete(ctx context.Context, ref string) error {
	bucket, name, err := ParseBodyRef(ref)
	if err != nil {
		return err
	}
	obs, err := b.store(ctx, bucket)
	if err != nil {
		if errors.Is(err, ErrBodyObject) {
			return nil
		}
		return err
	}
	if err := obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete body object %s: %w", ref, err)
	}
	return nil
}

// store binds to a bucket once and keeps the handle.
func (b *Bodies) store(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	obs, ok := b.stores[bucket]
	b.mu.Unlock()
	if ok {
		return obs, nil
	}
	obs, err := b.js.ObjectStore(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: bucket %s not found (start a worker to create it)", ErrBodyObject, bucket)
		}
		return nil, fmt.Errorf("body bucket %s: %w", bucket, err)
	}
	b.mu.Lock()
	b.stores[bucket] = obs
	b.mu.Unlock()
	return obs, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
