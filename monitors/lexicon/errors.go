package lexicon

import "errors"

// ErrPattern: a lexicon entry's pattern is malformed.
var ErrPattern = errors.New("invalid lexicon pattern")
