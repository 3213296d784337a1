package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

func TestStreamConfigsReplicasPlacementAndLimits(t *testing.T) {
	place := &jetstream.Placement{Cluster: "stagegate", Tags: []string{"ssd"}}
	tests := []struct {
		name     string
		o        events.StreamOptions
		replicas int
		place    *jetstream.Placement
		maxAge   time.Duration
	}{
		{"embedded defaults", events.StreamOptions{}, 1, nil, events.DefaultStreamMaxAge},
		{"cluster", events.StreamOptions{Replicas: 3, Placement: place, MaxAge: 7 * 24 * time.Hour}, 3, place, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgs := events.StreamConfigs(tt.o)
			if len(cfgs) != 4 {
				t.Fatalf("%d streams, want 4", len(cfgs))
			}
			for _, c := range cfgs {
				if c.Replicas != tt.replicas || c.Placement != tt.place || c.MaxAge != tt.maxAge {
					t.Errorf("%s: replicas %d placement %v max age %s; want %d %v %s", c.Name, c.Replicas, c.Placement, c.MaxAge, tt.replicas, tt.place, tt.maxAge)
				}
				if c.MaxMsgSize != events.MaxPayloadBytes || c.Duplicates != events.DefaultDuplicateWindow || c.Storage != jetstream.FileStorage {
					t.Errorf("%s: limits %d %s %v", c.Name, c.MaxMsgSize, c.Duplicates, c.Storage)
				}
			}
		})
	}
}
