package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions size the streams. Zero values take the defaults below.
type StreamOptions struct {
	// Replicas per stream: 1 embedded, 3 on a cluster.
	Replicas int
	// MaxAge keeps messages this long (default DefaultStreamMaxAge).
	MaxAge time.Duration
	// DuplicateWindow is how long Nats-Msg-Id de-duplication remembers an id
	// (default DefaultDuplicateWindow). A spooled event replayed within it is stored once.
	DuplicateWindow time.Duration
}

// Defaults for StreamOptions.
const (
	DefaultStreamMaxAge    = 30 * 24 * time.Hour
	DefaultDuplicateWindow = 2 * time.Hour
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
		Bucket:   BucketRollouts,
		History:  16,
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	}); err != nil {
		return fmt.Errorf("ensure kv %s: %w", BucketRollouts, err)
	}
	return nil
}
