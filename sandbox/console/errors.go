package console

import "errors"

// Sentinel errors of the console package.
var (
	// ErrConfig: the configuration or dependencies are invalid.
	ErrConfig = errors.New("invalid console configuration")
)
