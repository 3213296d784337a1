package incidents

import (
	"slices"

	"github.com/stagegate/stagegate/events"
)

// RedactMask replaces every redacted code point.
const RedactMask = '*'

// Redact returns a copy of in whose texts have the code points of every span
// replaced by RedactMask, keeping each text's length in code points so the spans
// still point at the (now masked) evidence, and Redacted set. in is not modified.
// Spans that fall outside their text are clipped; spans of an unknown field or
// message index are ignored.
func Redact(in *events.Interaction, spans []events.Span) *events.Interaction {
	if in == nil {
		return nil
	}
	out := *in
	out.Request.Messages = slices.Clone(in.Request.Messages)
	out.Decision.Reasons = slices.Clone(in.Decision.Reasons)
	if in.Request.Temperature != nil {
		t := *in.Request.Temperature
		out.Request.Temperature = &t
	}
	for i := range out.Request.Messages {
		out.Request.Messages[i].Content = maskSpans(out.Request.Messages[i].Content, spans, "prompt", i)
	}
	out.Response.Content = maskSpans(out.Response.Content, spans, "response", 0)
	out.Redacted = true
	return &out
}

// maskSpans masks the spans of s that belong to (field, msg). Only texts that have
// spans are converted to code points.
func maskSpans(s string, spans []events.Span, field string, msg int) string {
	var runes []rune
	for _, sp := range spans {
		if sp.Field != field || (field == "prompt" && sp.Message != msg) {
			continue
		}
		if runes == nil {
			runes = []rune(s)
		}
		start, end := max(sp.Start, 0), min(sp.End, len(runes))
		for j := start; j < end; j++ {
			runes[j] = RedactMask
		}
	}
	if runes == nil {
		return s
	}
	return string(runes)
}
