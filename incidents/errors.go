package incidents

import "errors"

// Sentinel errors of the incidents package.
var (
	// ErrNotFound: no incident or interaction has the requested id.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: an argument (interaction, finding, filter, path) is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrSchemaVersion: the database was written by a newer Stagegate whose schema
	// this binary does not know; refuse rather than corrupt it.
	ErrSchemaVersion = errors.New("database schema is newer than this binary")
)
