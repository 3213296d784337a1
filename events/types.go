package events

import (
	"encoding/json"
	"time"
)

// Schema identifiers carried in every payload's "schema" field. A breaking change to
// a payload gets a new version; readers check the field before decoding further.
const (
	SchemaInteraction = "stagegate.interaction.v1"
	SchemaFinding     = "stagegate.finding.v1"
	SchemaIncident    = "stagegate.incident.v1"
	SchemaFeedback    = "stagegate.feedback.v1"
)

// Interaction statuses: what happened to a request, from the client's point of view.
const (
	StatusOK            = "ok"             // the client got a complete answer
	StatusDenied        = "denied"         // the policy refused the request
	StatusUpstreamError = "upstream_error" // the model failed or timed out
	StatusPartial       = "partial"        // a stream broke after some bytes reached the client
	StatusClientClosed  = "client_closed"  // the client went away before the answer ended
)

// Routes: which arm of the trial served the request.
const (
	RouteCandidate = "candidate"
	RouteBaseline  = "baseline"
	// RouteShadow marks the candidate's answer to a shadow copy of a request: it was
	// monitored, never shown to the user.
	RouteShadow = "shadow"
)

// Interaction is one request and its answer as it passed through the gateway
// (schema stagegate.interaction.v1). It is published after the answer was sent.
type Interaction struct {
	Schema       string    `json:"schema"`
	ID           string    `json:"id"`
	TraceID      string    `json:"trace_id,omitempty"`
	SpanID       string    `json:"-"` // the producer span the NATS traceparent names; not part of the payload
	Trial        string    `json:"trial"`
	Tenant       string    `json:"tenant"`
	User         string    `json:"user"` // pseudonymised end-user id, never the raw one
	Cohort       string    `json:"cohort,omitempty"`
	Stage        string    `json:"stage"`
	LogicalModel string    `json:"logical_model"`           // what the client asked for
	Model        string    `json:"model,omitempty"`         // the concrete model that served it
	Route        string    `json:"route,omitempty"`         // candidate | baseline
	Status       string    `json:"status"`                  // one of the Status* constants
	HTTPStatus   int       `json:"http_status"`             // status code the client received
	Stream       bool      `json:"stream"`                  // served as server-sent events
	Redacted     bool      `json:"redacted,omitempty"`      // text was redacted before publishing
	FallbackFrom string    `json:"fallback_from,omitempty"` // the candidate that failed before the baseline answered
	StartedAt    time.Time `json:"started_at"`
	Request      Request   `json:"request"`
	Response     Response  `json:"response"`
	Decision     Decision  `json:"decision"`
	Latency      Latency   `json:"latency"`
}

// Request is the part of the client's request that monitors and auditors need.
type Request struct {
	Messages    []Message `json:"messages"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Response is the answer the client received (for streams, the chunks joined).
type Response struct {
	ID           string `json:"id,omitempty"`
	Content      string `json:"content"`
	FinishReason string `json:"finish_reason,omitempty"`
	Usage        Usage  `json:"usage"`
	Error        string `json:"error,omitempty"`
}

// Usage counts tokens as the upstream reported them.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Decision records the policy decision that admitted or refused the request, so an
// auditor can see why it was treated as it was.
type Decision struct {
	Allow          bool        `json:"allow"`
	Reasons        []Reason    `json:"reasons,omitempty"`
	Route          string      `json:"route,omitempty"`
	Obligations    Obligations `json:"obligations"`
	PolicyRevision string      `json:"policy_revision"`
	EvalMicros     int64       `json:"eval_us"`
	// Input is the policy input (canonical JSON of stagegate.policy.input.v1), so a
	// replay can re-evaluate exactly what the policy saw.
	Input json.RawMessage `json:"input,omitempty"`
	// InputHash identifies Input (and keys the decision memo).
	InputHash string `json:"input_hash,omitempty"`
	// MemoHit is true when the decision came from the memo, not a fresh evaluation.
	MemoHit bool `json:"memo_hit,omitempty"`
	// Experiment, Arm and VariantRevision name the policy experiment the user
	// took part in, their arm, and the revision of the policy that arm was
	// served; absent outside experiments.
	Experiment      string `json:"experiment,omitempty"`
	Arm             string `json:"arm,omitempty"`
	VariantRevision string `json:"variant_revision,omitempty"`
	// TrialRules are what the trial's definition imposed on top of the policy
	// (already folded into Obligations), so a replay folds them into a
	// re-evaluated decision the same way; absent when the trial imposes none.
	TrialRules *TrialRules `json:"trial_rules,omitempty"`
}

// TrialRules are obligations a trial imposes whatever its policy decides.
type TrialRules struct {
	// MaxTokens caps the answer (caps.tokens_per_request); 0: no cap.
	MaxTokens int `json:"max_tokens,omitempty"`
	// RedactPII stores the interaction redacted (data_handling.redact_pii).
	RedactPII bool `json:"redact_pii,omitempty"`
}

// Apply folds the rules into a decision's redaction and max_tokens: redaction
// if either asks for it, the smaller of two caps. A nil r changes nothing.
func (r *TrialRules) Apply(redact bool, maxTokens int) (bool, int) {
	if r == nil {
		return redact, maxTokens
	}
	if r.RedactPII {
		redact = true
	}
	if r.MaxTokens > 0 && (maxTokens == 0 || maxTokens > r.MaxTokens) {
		maxTokens = r.MaxTokens
	}
	return redact, maxTokens
}

// Reason is a stable code and a human sentence.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Obligations are what the policy requires of the gateway for this request.
type Obligations struct {
	RedactPIIInStorage bool   `json:"redact_pii_in_storage,omitempty"`
	MaxTokens          int    `json:"max_tokens,omitempty"`
	Notice             string `json:"notice,omitempty"`
}

// Latency is measured at the gateway, in milliseconds.
type Latency struct {
	TotalMS      float64 `json:"total_ms"`
	UpstreamMS   float64 `json:"upstream_ms"`
	FirstTokenMS float64 `json:"first_token_ms,omitempty"` // time to first token, streams only
}

// Severity levels, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// SeverityRank orders severities; unknown ones rank 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// Finding is what one detector reported on one interaction
// (schema stagegate.finding.v1).
type Finding struct {
	Schema          string    `json:"schema"`
	ID              string    `json:"id"` // deterministic: same interaction+detector+version, same id
	InteractionID   string    `json:"interaction_id"`
	Trial           string    `json:"trial"`
	Model           string    `json:"model"`
	Detector        string    `json:"detector"`
	DetectorVersion string    `json:"detector_version"`
	Category        string    `json:"category"` // pii, prompt_injection, jailbreak, toxicity, unsafe_advice, slo
	Severity        string    `json:"severity"`
	Score           float64   `json:"score"`     // in [0,1]
	Threshold       float64   `json:"threshold"` // the score at or above which this was reported
	Spans           []Span    `json:"spans"`
	Explanation     string    `json:"explanation"`
	CreatedAt       time.Time `json:"created_at"`
}

// Span points at evidence: a range of Unicode code points [Start, End) in one text
// of the interaction. Field is "prompt" (then Message is the index into
// request.messages) or "response".
type Span struct {
	Field   string `json:"field"`
	Message int    `json:"message"`
	Start   int    `json:"start"`
	End     int    `json:"end"`
	Kind    string `json:"kind,omitempty"` // e.g. email, phone, card
}

// SpanText is the text sp covers in the interaction, "" when in is nil or sp
// does not fit the text it names.
func (in *Interaction) SpanText(sp Span) string {
	if in == nil {
		return ""
	}
	var text string
	switch {
	case sp.Field == "response":
		text = in.Response.Content
	case sp.Field == "prompt" && sp.Message >= 0 && sp.Message < len(in.Request.Messages):
		text = in.Request.Messages[sp.Message].Content
	default:
		return ""
	}
	runes := []rune(text)
	if sp.Start < 0 || sp.End > len(runes) || sp.Start > sp.End {
		return ""
	}
	return string(runes[sp.Start:sp.End])
}

// IncidentEvent announces a change in an incident's lifecycle
// (schema stagegate.incident.v1) on stagegate.incidents.<trial>.
type IncidentEvent struct {
	Schema     string    `json:"schema"`
	ID         string    `json:"id"` // event id: incident id + ":" + sequence
	IncidentID string    `json:"incident_id"`
	Trial      string    `json:"trial"`
	Model      string    `json:"model"`
	Type       string    `json:"type"` // opened, updated, status_changed
	Status     string    `json:"status"`
	Severity   string    `json:"severity"`
	Category   string    `json:"category"`
	At         time.Time `json:"at"`
}

// Feedback is a pilot user's report on an answer (schema stagegate.feedback.v1),
// published on stagegate.feedback.<trial>; it opens a user-report incident on
// the interaction.
type Feedback struct {
	Schema        string    `json:"schema"`
	ID            string    `json:"id"` // acknowledged to the user, who can quote it
	InteractionID string    `json:"interaction_id"`
	Trial         string    `json:"trial"`
	Tenant        string    `json:"tenant"`
	User          string    `json:"user"` // pseudonymised
	Category      string    `json:"category"`
	Comment       string    `json:"comment,omitempty"`
	At            time.Time `json:"at"`
}

// Feedback categories a pilot user can choose.
var FeedbackCategories = []string{"harmful", "wrong", "privacy", "offensive", "other"}

// CategoryUserReport is the incident category of pilot-user reports.
const CategoryUserReport = "user_report"
