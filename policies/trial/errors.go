package trial

import "errors"

// Sentinel errors of the trial package.
var (
	// ErrInvalid: the trial definition cannot be read or breaks a rule; the
	// message lists every problem as file:line: field: what.
	ErrInvalid = errors.New("invalid trial definition")
	// ErrNotActive: the time is outside the trial's window.
	ErrNotActive = errors.New("trial not active")
)
