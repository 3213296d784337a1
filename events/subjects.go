package events

import (
	"fmt"
	"regexp"
)

// Stream names and subject roots (DESIGN.md, "Contracts between parts").
const (
	StreamInteractions = "INTERACTIONS"
	StreamFindings     = "FINDINGS"
	StreamIncidents    = "INCIDENTS"
	StreamFeedback     = "FEEDBACK"
	BucketRollouts     = "ROLLOUTS"

	SubjectInteractions = "stagegate.interactions" // .<trial>.<model>
	SubjectFindings     = "stagegate.findings"     // .<trial>.<detector>
	SubjectIncidents    = "stagegate.incidents"    // .<trial>
	SubjectFeedback     = "stagegate.feedback"     // .<trial>

	HeaderMsgID       = "Nats-Msg-Id"
	HeaderTraceParent = "traceparent"
	HeaderSchema      = "Stagegate-Schema"
)

// tokenRE is what a trial, model or detector name may be: it becomes one subject
// token, so no dots, wildcards or spaces.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidToken reports whether s can be used as a single subject token (trial id,
// model name, detector name).
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// CheckToken returns an error naming what when s is not a valid subject token.
func CheckToken(what, s string) error {
	if !ValidToken(s) {
		return fmt.Errorf("%s %q: %w", what, s, ErrInvalidToken)
	}
	return nil
}

// InteractionSubject is stagegate.interactions.<trial>.<model>.
func InteractionSubject(trial, model string) string {
	return SubjectInteractions + "." + trial + "." + model
}

// FindingSubject is stagegate.findings.<trial>.<detector>.
func FindingSubject(trial, detector string) string {
	return SubjectFindings + "." + trial + "." + detector
}

// IncidentSubject is stagegate.incidents.<trial>.
func IncidentSubject(trial string) string { return SubjectIncidents + "." + trial }

// FeedbackSubject is stagegate.feedback.<trial>.
func FeedbackSubject(trial string) string { return SubjectFeedback + "." + trial }
