package events

import "errors"

// Sentinel errors of the events package.
var (
	// ErrInvalidToken: a trial, model or detector name cannot be a NATS subject token.
	ErrInvalidToken = errors.New("not a valid name: use 1-64 letters, digits, '-' or '_'")
	// ErrSchema: a payload's schema field is missing or not the expected version.
	ErrSchema = errors.New("unexpected payload schema")
	// ErrPayload: a payload is malformed or misses required fields.
	ErrPayload = errors.New("invalid payload")
	// ErrPayloadTooLarge: a payload exceeds MaxPayloadBytes.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrQueueFull: the publisher's in-memory queue is full; the event was not accepted.
	ErrQueueFull = errors.New("publish queue full")
	// ErrClosed: the publisher was stopped.
	ErrClosed = errors.New("publisher stopped")
	// ErrSpoolFull: the on-disk spool reached its size limit; an interaction that
	// could not be published was lost (counted in PublisherStats.Lost).
	ErrSpoolFull = errors.New("publish spool full")
	// ErrSpoolCorrupt: a spool segment or cursor failed its checksum or is torn.
	ErrSpoolCorrupt = errors.New("spool data corrupt")
	// ErrSpoolLocked: another publisher (process) holds the spool directory.
	ErrSpoolLocked = errors.New("spool directory in use by another process")
)

func joinErrs(errs []error) error { return errors.Join(errs...) }
