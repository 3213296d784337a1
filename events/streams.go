package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions size the streams. Zero values take the defaults below.
//
// On a NATS cluster: Replicas 3 keeps every stream and the ROLLOUTS bucket
// available while one of three servers is down (JetStream needs a majority of
// a stream's replicas to accept a write, so R3 survives one loss, R5 two).
// Embedded (one server) it must be 1. Placement pins the streams to a cluster
// or to servers with given tags (e.g. fast disks); nil lets JetStream choose.
// Limits: every stream keeps MaxAge of messages, refuses a message larger than
// MaxPayloadBytes, and remembers Nats-Msg-Id for DuplicateWindow; a server's
// JetStream max_file_store caps the sum, so size it for the interaction rate ×
// the average payload × MaxAge × replicas / servers (README, capacity model).
// Consumers inherit the stream's replicas; the monitors' durable consumer is
// shared by every monitor process, each message going to one of them.
type StreamOptions struct {
	// Replicas per stream: 1 embedded, 3 on a cluster.
	Replicas int
	// Placement, when set, places every stream and the ROLLOUTS bucket on one
	// cluster and/or on servers carrying all the given tags.
	Placement *jetstream.Placement
	// MaxAge keeps messages this long (default DefaultStreamMaxAge).
	MaxAge time.Duration
	// DuplicateWindow is how long Nats-Msg-Id de-duplication remembers an id
	// (default DefaultDuplicateWindow). A spooled event replayed within it is stored once.
	DuplicateWindow time.Duration
}

// Defaults for StreamOptions.
const (
	DefaultStreamMaxAge = 30 * 24 * time.Hour
	// DefaultDuplicateWindow: JetStream keeps every message id of the window in
	// memory (at 1000 interactions/s a 2 h window grew the server by ~0.8 GB), so
	// the window covers what the spool needs — outages of minutes — and no more.
	// A spooled interaction replayed after a longer outage may be stored twice;
	// the store is idempotent by interaction id, so no incident is duplicated.
	DefaultDuplicateWindow = 20 * time.Minute
)

// StreamConfigs returns the JetStream configuration of every stream of the contract.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultStreamMaxAge
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	mk := func(name, root string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{root + ".>"},
			Storage:    jetstream.FileStorage,
			Replicas:   o.Replicas,
			MaxAge:     o.MaxAge,
			Duplicates: o.DuplicateWindow,
			MaxMsgSize: MaxPayloadBytes,
			Placement:  o.Placement,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamInteractions, SubjectInteractions),
		mk(StreamFindings, SubjectFindings),
		mk(StreamIncidents, SubjectIncidents),
		mk(StreamFeedback, SubjectFeedback),
	}
}

// EnsureStreams creates or updates every stream and the ROLLOUTS KV bucket. It is
// idempotent: calling it on every start keeps what the streams hold.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	for _, cfg := range StreamConfigs(o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	replicas := o.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:    BucketRollouts,
		History:   16,
		Storage:   jetstream.FileStorage,
		Replicas:  replicas,
		Placement: o.Placement,
	}); err != nil {
		return fmt.Errorf("ensure kv %s: %w", BucketRollouts, err)
	}
	return nil
}
