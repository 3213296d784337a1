package sim

import "errors"

// Sentinel errors of the sim package.
var (
	// ErrInvalidConfig: Config.Validate found a problem; New wraps the details with it.
	ErrInvalidConfig = errors.New("invalid simulator config")
	// ErrAlreadyStarted: Start was called on a server that is already listening.
	ErrAlreadyStarted = errors.New("simulator already started")
	// ErrInvalidRequest: a chat-completion request body is malformed or misses
	// required fields (answered with 400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidDirective: a [sim:...] directive is unknown or has a bad value
	// (answered with 400, code "invalid_directive").
	ErrInvalidDirective = errors.New("invalid sim directive")
	// ErrBodyTooLarge: the request body exceeds Config.MaxBodyBytes (answered with 413).
	ErrBodyTooLarge = errors.New("request body too large")
)
