package offline

import "errors"

// Sentinel errors of the offline package.
var (
	// ErrBadLines: some input lines could not be scanned; each was reported and
	// skipped.
	ErrBadLines = errors.New("some input lines were rejected")
	// ErrConfig: the Config or the detectors given to New are invalid.
	ErrConfig = errors.New("invalid scan configuration")
)
