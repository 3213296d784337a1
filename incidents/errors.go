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
	// ErrConflict: the incident is held by another reviewer (claim it only after
	// they release it, or have it assigned), or the user already exists.
	ErrConflict = errors.New("conflict")
	// ErrCredentials: unknown user, wrong password or disabled account. The
	// message never says which.
	ErrCredentials = errors.New("wrong user name or password")
	// ErrForbidden: the user's role or trials do not allow the request.
	ErrForbidden = errors.New("forbidden")
)
