package lexicon

import (
	"errors"
	"fmt"
)

// Settings are the knobs every phrase-lexicon detector takes. Zero values take
// the detector's defaults (see Resolve).
type Settings struct {
	// Threshold is the score in [0,1] at or above which a finding is reported.
	Threshold float64
	// MaxSpans caps the evidence spans of one finding.
	MaxSpans int
}

// Resolve fills zero fields with a detector's defaults and checks the result,
// reporting every problem at once with the detector's name.
func (s Settings) Resolve(detector string, threshold float64, maxSpans, maxSpansLimit int) (Settings, error) {
	if s.Threshold == 0 {
		s.Threshold = threshold
	}
	if s.MaxSpans == 0 {
		s.MaxSpans = maxSpans
	}
	var errs []error
	if s.Threshold < 0 || s.Threshold > 1 {
		errs = append(errs, fmt.Errorf("%s: threshold %v not in [0,1]", detector, s.Threshold))
	}
	if s.MaxSpans < 1 || s.MaxSpans > maxSpansLimit {
		errs = append(errs, fmt.Errorf("%s: max spans %d not in [1,%d]", detector, s.MaxSpans, maxSpansLimit))
	}
	return s, errors.Join(errs...)
}
