package replay

import "errors"

// Sentinel errors of the replay package.
var (
	// ErrConfig: invalid arguments (trial id, worker count, data dir).
	ErrConfig = errors.New("invalid replay configuration")
	// ErrSource: the recorded interactions could not be read.
	ErrSource = errors.New("recorded interactions unavailable")
)
