package dlqops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
)

// ReplayMarker records that a record's job was enqueued by a replay.
type ReplayMarker struct {
	JobID string `json:"job_id"`
	// RecordStoredAt identifies the record together with its sequence: a
	// stream deleted and created again reuses sequences, and a marker of a
	// record of the old stream must not pass for one of the new.
	RecordStoredAt time.Time `json:"record_stored_at"`
	MsgID          string    `json:"msg_id"`
	Subject        string    `json:"subject"`
	FunctionID     string    `json:"function_id,omitempty"`
	// JobsSeq is the replayed job's sequence in the jobs stream.
	JobsSeq    uint64    `json:"jobs_seq"`
	ReplayedAt time.Time `json:"replayed_at"`
}

func (m *ReplayMarker) matches(r dlq.Record) bool {
	return m.JobID == r.JobID && m.RecordStoredAt.Equal(r.StoredAt)
}

func markerKey(seq uint64) string { return strconv.FormatUint(seq, 10) }

// markers returns the marker bucket; nil (no error) when it does not exist
// and create is false.
func (s *Store) markers(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, s.cfg.ReplayBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("replay markers %s: %w", s.cfg.ReplayBucket, err)
	}
	if !create {
		return nil, nil
	}
	sc := s.stream.CachedInfo().Config
	ttl := s.cfg.ReplayMarkerTTL
	if ttl == 0 {
		ttl = sc.MaxAge
	}
	kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.cfg.ReplayBucket,
		Description: "replayed dead-letter records of " + s.cfg.Stream + " (key: record sequence)",
		TTL:         ttl,
		Replicas:    sc.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, s.cfg.ReplayBucket) // created meanwhile by another replay
	}
	if err != nil {
		return nil, fmt.Errorf("replay markers %s: %w", s.cfg.ReplayBucket, err)
	}
	return kv, nil
}

// ReplayMarker returns r's replay marker, or nil when r was never replayed.
func (s *Store) ReplayMarker(ctx context.Context, r dlq.Record) (*ReplayMarker, error) {
	kv, err := s.markers(ctx, false)
	if err != nil || kv == nil {
		return nil, err
	}
	return s.marker(ctx, kv, r)
}

func (s *Store) marker(ctx context.Context, kv jetstream.KeyValue, r dlq.Record) (*ReplayMarker, error) {
	if kv == nil {
		return nil, nil
	}
	e, err := kv.Get(ctx, markerKey(r.Seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay marker of record %d: %w", r.Seq, err)
	}
	var m ReplayMarker
	if err := json.Unmarshal(e.Value(), &m); err != nil || !m.matches(r) {
		return nil, nil // not this record's: written by an older stream of the same name
	}
	return &m, nil
}
