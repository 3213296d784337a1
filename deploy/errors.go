package deploy

import "errors"

// Sentinel errors of the deploy package.
var (
	// ErrInvalidSpec: a rollout plan or model registration is malformed; the
	// wrapped message says where (with a line number for YAML) and what.
	ErrInvalidSpec = errors.New("invalid rollout plan")
	// ErrNotFound: no rollout (or registered model) has the requested name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the rollout state changed under the caller (another controller
	// or operator wrote a newer revision); re-read and retry.
	ErrConflict = errors.New("rollout state changed concurrently")
	// ErrAction: a manual action does not apply in the rollout's current state
	// (e.g. resume of a rollout that is not paused).
	ErrAction = errors.New("action not possible now")
	// ErrCheckFailed: a model failed its connectivity and conformance check; the
	// CheckReport says which part failed and why.
	ErrCheckFailed = errors.New("model check failed")
)

// ErrInvalid: an argument other than a plan (actor, reason, trial id, model
// registration) is malformed.
var ErrInvalid = errors.New("invalid argument")
