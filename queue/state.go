package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StateStore keeps small per-job records between deliveries of a job (the
// worker's attempt history and count of deliveries that made no attempt)
// in a JetStream key-value bucket, so that they survive worker crashes and
// are shared by every worker process.
type StateStore struct {
	kv jetstream.KeyValue
}

// Defaults of the state bucket: its name, and how long a record outlives
// its last update (EnsureStateStore's ttl).
const (
	StateBucketDefault = "INVOKE_ATTEMPTS"
	StateMaxAgeDefault = 24 * time.Hour
)

// EnsureStateStore creates or updates the bucket. ttl bounds how long a
// record outlives its job (entries are also deleted when a job ends).
func EnsureStateStore(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (*StateStore, error) {
	if bucket == "" {
		bucket = StateBucketDefault
	}
	if replicas == 0 {
		replicas = ReplicasDefault
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "per-job attempt state of invoke workers",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		// Enables per-key TTLs (Mark).
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("state bucket %s: %w", bucket, replicasError(err, replicas))
	}
	return &StateStore{kv: kv}, nil
}

// Get returns the value of key, or nil when there is none.
func (s *StateStore) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return e.Value(), nil
}

// Put stores value under key and returns once JetStream stored it.
func (s *StateStore) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.kv.Put(ctx, key, value)
	return err
}

// Delete removes key.
func (s *StateStore) Delete(ctx context.Context, key string) error {
	err := s.kv.Delete(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Mark stores value under key unless the key exists, and has JetStream
// remove it after ttl. A key that exists already is not an error: a mark
// is written once per delivery, and a retried delivery finds its own.
func (s *StateStore) Mark(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := s.kv.Create(ctx, key, value, jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}

// OpenStateStore opens a bucket that exists, for workers that must not
// change stream configuration; a missing bucket wraps
// jetstream.ErrBucketNotFound.
func OpenStateStore(ctx context.Context, js jetstream.JetStream, bucket string) (*StateStore, error) {
	if bucket == "" {
		bucket = StateBucketDefault
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("state bucket %s: %w", bucket, err)
	}
	return &StateStore{kv: kv}, nil
}
