package events

import (
	"encoding/json"
	"fmt"
	"slices"
)

// MaxPayloadBytes bounds any payload read from NATS. An interaction carries the
// request and response text; the gateway's body cap (1 MiB default) plus the answer
// fits well under it.
const MaxPayloadBytes = 8 << 20

// DecodeInteraction parses and validates an interaction payload read from NATS.
func DecodeInteraction(data []byte) (*Interaction, error) {
	var in Interaction
	if err := decode(data, SchemaInteraction, &in); err != nil {
		return nil, err
	}
	var errs []error
	if in.ID == "" {
		errs = append(errs, fmt.Errorf("%w: interaction id is empty", ErrPayload))
	}
	if !ValidToken(in.Trial) {
		errs = append(errs, fmt.Errorf("%w: trial %q", ErrPayload, in.Trial))
	}
	if in.Status == "" {
		errs = append(errs, fmt.Errorf("%w: status is empty", ErrPayload))
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return &in, nil
}

// DecodeFinding parses and validates a finding payload read from NATS.
func DecodeFinding(data []byte) (*Finding, error) {
	var f Finding
	if err := decode(data, SchemaFinding, &f); err != nil {
		return nil, err
	}
	var errs []error
	if f.ID == "" || f.InteractionID == "" {
		errs = append(errs, fmt.Errorf("%w: finding id and interaction_id are required", ErrPayload))
	}
	if f.Detector == "" || f.Category == "" {
		errs = append(errs, fmt.Errorf("%w: detector and category are required", ErrPayload))
	}
	if SeverityRank(f.Severity) == 0 {
		errs = append(errs, fmt.Errorf("%w: severity %q", ErrPayload, f.Severity))
	}
	if f.Score < 0 || f.Score > 1 {
		errs = append(errs, fmt.Errorf("%w: score %v outside [0,1]", ErrPayload, f.Score))
	}
	for i, s := range f.Spans {
		if s.Start < 0 || s.End < s.Start || (s.Field != "prompt" && s.Field != "response") {
			errs = append(errs, fmt.Errorf("%w: span %d is malformed", ErrPayload, i))
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return &f, nil
}

func decode(data []byte, schema string, v any) error {
	if len(data) > MaxPayloadBytes {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrPayloadTooLarge, len(data), MaxPayloadBytes)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if head.Schema != schema {
		return fmt.Errorf("%w: got %q, want %q", ErrSchema, head.Schema, schema)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrPayload, err)
	}
	return nil
}

// MaxFeedbackComment bounds a user report's comment, in bytes.
const MaxFeedbackComment = 4000

// DecodeFeedback parses and validates a feedback payload read from NATS.
func DecodeFeedback(data []byte) (*Feedback, error) {
	var f Feedback
	if err := decode(data, SchemaFeedback, &f); err != nil {
		return nil, err
	}
	var errs []error
	if f.ID == "" || f.InteractionID == "" {
		errs = append(errs, fmt.Errorf("%w: feedback id and interaction_id are required", ErrPayload))
	}
	if !ValidToken(f.Trial) {
		errs = append(errs, fmt.Errorf("%w: trial %q", ErrPayload, f.Trial))
	}
	if !slices.Contains(FeedbackCategories, f.Category) {
		errs = append(errs, fmt.Errorf("%w: category %q", ErrPayload, f.Category))
	}
	if len(f.Comment) > MaxFeedbackComment {
		errs = append(errs, fmt.Errorf("%w: comment longer than %d bytes", ErrPayload, MaxFeedbackComment))
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return &f, nil
}
