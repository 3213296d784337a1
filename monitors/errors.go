package monitors

import "errors"

// Sentinel errors of the monitors package.
var (
	// ErrConfig: the Config or Deps given to New are invalid.
	ErrConfig = errors.New("invalid monitors configuration")
	// ErrRunning: Start was called on a runner that is already running.
	ErrRunning = errors.New("runner already running")
	// ErrDetectorPanic: a detector panicked; the runner recovered and treats it as
	// that detector's error.
	ErrDetectorPanic = errors.New("detector panicked")
)
