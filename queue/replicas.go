package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrTooManyReplicas means a stream or bucket was asked for more replicas
// than the JetStream servers can place: more than one on a server that is
// not part of a cluster, or more than the cluster has servers online.
var ErrTooManyReplicas = errors.New("more replicas than the JetStream servers can place")

// Error codes of the server's answers to a replica count it cannot place.
const (
	// errCodeReplicasNotSupported: "replicas > 1 not supported in
	// non-clustered mode".
	errCodeReplicasNotSupported jetstream.ErrorCode = 10074
	// errCodeClusterNoPeers: "no suitable peers for placement", the
	// answer of a cluster with fewer servers (online) than replicas.
	errCodeClusterNoPeers jetstream.ErrorCode = 10005
)

// replicasError wraps err with ErrTooManyReplicas when it is the server
// refusing a replica count above 1.
func replicasError(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if replicas <= 1 || !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.ErrorCode {
	case errCodeReplicasNotSupported, errCodeClusterNoPeers:
		return fmt.Errorf("%w: asked for %d (a server outside a cluster holds 1; a cluster, as many as it has servers online): %w",
			ErrTooManyReplicas, replicas, err)
	}
	return err
}

// EnsureStreams creates the streams and the claim-check buckets when
// missing and updates them in place when they differ, the replica count
// included. A replica count the servers cannot place fails with
// ErrTooManyReplicas.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.checkWaitPrefix(); err != nil {
		return err
	}
	for _, sc := range t.Streams() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, replicasError(err, sc.Replicas))
		}
	}
	for _, bc := range t.BodyBuckets() {
		if _, err := js.CreateOrUpdateObjectStore(ctx, bc); err != nil {
			return fmt.Errorf("object store %s: %w", bc.Bucket, replicasError(err, bc.Replicas))
		}
	}
	return nil
}

// UpdateBucketReplicas sets the replica count of a key-value bucket that
// exists, and does nothing when it does not: for buckets created on
// demand by another part of the product (the DLQ's replay markers), which
// must follow the streams when their replica count changes.
func UpdateBucketReplicas(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) error {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	kvs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return fmt.Errorf("bucket %s: status of type %T has no stream configuration", bucket, st)
	}
	info := kvs.StreamInfo()
	if info.Config.Replicas == replicas {
		return nil
	}
	sc := info.Config
	sc.Replicas = replicas
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, replicasError(err, replicas))
	}
	return nil
}
