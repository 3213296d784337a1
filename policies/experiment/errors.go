package experiment

import "errors"

// Sentinel errors of the experiment package.
var (
	// ErrInvalid: an experiment definition cannot be read or breaks a rule; an
	// *Error lists every problem as file:line: field: what.
	ErrInvalid = errors.New("invalid experiment definition")
	// ErrConfig: a Config or Deps of a component is invalid.
	ErrConfig = errors.New("invalid experiment configuration")
	// ErrNotFound: no experiment (or trial) has the name.
	ErrNotFound = errors.New("experiment not found")
	// ErrTransition: the lifecycle does not allow the action from the
	// experiment's status (draft → running → stopped → concluded).
	ErrTransition = errors.New("experiment transition not allowed")
	// ErrConflict: the action clashes with another experiment or change (one
	// running experiment per trial; a running experiment's definition is fixed).
	ErrConflict = errors.New("experiment conflict")
	// ErrVariant: a variant's policy cannot be built (folder missing, overlay
	// not mergeable, compile error).
	ErrVariant = errors.New("experiment variant unavailable")
	// ErrState: an experiment state in the EXPERIMENTS bucket is malformed.
	ErrState = errors.New("invalid experiment state")
)
