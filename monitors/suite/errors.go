package suite

import "errors"

// ErrConfig: the suite configuration is invalid.
var ErrConfig = errors.New("invalid detector suite configuration")
