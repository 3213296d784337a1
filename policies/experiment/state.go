package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/incidents"
)

// BucketExperiments is the JetStream KV bucket holding the state of every
// experiment under its name; every gateway watches it.
const BucketExperiments = "EXPERIMENTS"

// SchemaState identifies the JSON of an experiment state in the bucket.
const SchemaState = "stagegate.experiment.state.v1"

// Lifecycle statuses (as the incident store keeps them).
const (
	StatusDraft     = incidents.ExperimentDraft
	StatusRunning   = incidents.ExperimentRunning
	StatusStopped   = incidents.ExperimentStopped
	StatusConcluded = incidents.ExperimentConcluded
)

// Causes of a stop.
const (
	StopByRule     = incidents.StopByRule
	StopByHand     = incidents.StopByHand
	StopPlannedEnd = incidents.StopPlannedEnd
)

// MaxStateBytes bounds one state's JSON.
const MaxStateBytes = MaxDefinitionBytes + 16<<10

// State is an experiment as the gateways see it. A running state carries the
// definition, so every gateway builds the arms' policies without the store.
type State struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Trial  string `json:"trial"`
	Status string `json:"status"`
	// Digest identifies the definition ("sha256:" + hex of Source).
	Digest string `json:"digest"`
	// Source is the definition YAML (running states only).
	Source     string    `json:"source,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	StoppedAt  time.Time `json:"stopped_at,omitzero"`
	StopCause  string    `json:"stop_cause,omitempty"`
	StopReason string    `json:"stop_reason,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// StateOf is the bucket state of a stored experiment.
func StateOf(e *incidents.Experiment) State {
	s := State{
		Schema: SchemaState, Name: e.Name, Trial: e.Trial, Status: e.Status, Digest: e.Digest,
		StartedAt: e.StartedAt, StoppedAt: e.StoppedAt, StopCause: e.StopCause, StopReason: e.StopReason, UpdatedAt: e.UpdatedAt,
	}
	if e.Status == StatusRunning {
		s.Source = e.Source
	}
	return s
}

// EncodeState marshals a state for the bucket.
func EncodeState(s *State) ([]byte, error) {
	c := *s
	c.Schema = SchemaState
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode experiment state %s: %w", s.Name, err)
	}
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("%w: experiment %s: state is %d bytes (max %d)", ErrState, s.Name, len(b), MaxStateBytes)
	}
	return b, nil
}

// DecodeState reads a state from the bucket, checking its schema and fields.
// A running state's definition is parsed by the Decider that serves it.
func DecodeState(b []byte) (*State, error) {
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrState, len(b), MaxStateBytes)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var errs []error
	if s.Schema != SchemaState {
		errs = append(errs, fmt.Errorf("schema %q, want %s", s.Schema, SchemaState))
	}
	if err := checkToken(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if err := checkToken(s.Trial); err != nil {
		errs = append(errs, fmt.Errorf("trial: %w", err))
	}
	switch s.Status {
	case StatusDraft, StatusStopped, StatusConcluded:
	case StatusRunning:
		if s.Source == "" {
			errs = append(errs, errors.New("a running state carries its definition"))
		}
	default:
		errs = append(errs, fmt.Errorf("status %q", s.Status))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	return &s, nil
}

// EnsureBucket creates or updates the EXPERIMENTS bucket (idempotent).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketExperiments,
		Description:  "policy experiments: the state every gateway follows",
		History:      16,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
		MaxValueSize: MaxStateBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure kv %s: %w", BucketExperiments, err)
	}
	return kv, nil
}
