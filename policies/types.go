package policies

// InputVersion and DecisionVersion name the documented contract (README.md and
// schema/*.json). Regulators write policies against those documents, not these structs.
const (
	InputVersion    = "stagegate.policy.input.v1"
	DecisionVersion = "stagegate.policy.decision.v1"
)

// Input is the structured facts a policy decides on. No raw prompt text: Go
// extractors turn it into Signals before the decision, which keeps decisions fast,
// deterministic and replayable.
type Input struct {
	Trial   string       `json:"trial"`
	Stage   string       `json:"stage"`
	Time    string       `json:"time"` // RFC 3339, UTC, truncated to the minute
	Request RequestFacts `json:"request"`
	Caller  Caller       `json:"caller"`
	Signals Signals      `json:"signals"`
	// Content is the raw text of the messages. The gateway fills it only for a
	// trial that opts in (policy.content_access: true); it is absent otherwise.
	// A policy that reads it sees different inputs for nearly every request, so
	// its decisions are rarely memoised: slower, and documented as such.
	Content []ContentMessage `json:"content,omitempty"`
}

// ContentMessage is one chat message's role and text, present in Input.Content
// only when the trial grants content access.
type ContentMessage struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

// RequestFacts describes the request without its text.
type RequestFacts struct {
	Model                 string   `json:"model"` // the logical model the client named
	Stream                bool     `json:"stream"`
	MaxTokens             int      `json:"max_tokens"` // 0 when the client set none
	MessageCount          int      `json:"message_count"`
	Roles                 []string `json:"roles"`
	EstimatedPromptTokens int      `json:"estimated_prompt_tokens"`
}

// Caller is who sent the request.
type Caller struct {
	Tenant     string            `json:"tenant"`
	User       string            `json:"user"` // pseudonymised
	Cohort     string            `json:"cohort"`
	Attributes map[string]string `json:"attributes"`
	OverQuota  bool              `json:"over_quota"`
}

// Signals are computed from the prompt by Go extractors.
type Signals struct {
	PIITypes       []string `json:"pii_types"`       // sorted, unique: email, phone, card
	Topics         []string `json:"topics"`          // sorted, unique names of matched trial topics
	InjectionScore float64  `json:"injection_score"` // 0..1
	Language       string   `json:"language"`        // en, zh, or und
}

// Decision is the typed result of one evaluation.
type Decision struct {
	Allow       bool        `json:"allow"`
	Reasons     []Reason    `json:"reasons"`
	Route       string      `json:"route"` // "" (rollout decides), "candidate" or "baseline"
	Obligations Obligations `json:"obligations"`
	FailMode    string      `json:"fail_mode"` // "open" or "closed"
	// Revision is the policy revision (content hash) that made the decision.
	Revision string `json:"-"`
	// EvalMicros is the time the decision took (a memo hit costs a few µs).
	EvalMicros int64 `json:"-"`
	// Input is the canonical JSON of the input the decision was made on (keys
	// sorted, no insignificant space; see CanonicalInput). The gateway records it
	// in the interaction so a replay can re-evaluate exactly what the policy saw.
	// It is owned by the caller.
	Input []byte `json:"-"`
	// InputHash is "sha256:" and the hex SHA-256 of Input.
	InputHash string `json:"-"`
	// MemoHit is true when the decision came from the engine's memo rather than
	// a fresh evaluation. A memoised decision is always the one a fresh
	// evaluation would give (TestMemoNeverChangesAResult).
	MemoHit bool `json:"-"`
	// Experiment, Arm and VariantRevision mark a decision made for a user
	// taking part in a policy experiment (package policies/experiment): the
	// experiment, the user's arm and the revision of the policy that arm is
	// served. Empty outside experiments; set by the experiment's Decider.
	Experiment      string `json:"experiment,omitempty"`
	Arm             string `json:"arm,omitempty"`
	VariantRevision string `json:"variant_revision,omitempty"`
}

// Reason is a stable code and a human sentence.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Obligations are duties the gateway carries out for an allowed request.
type Obligations struct {
	RedactPIIInStorage bool   `json:"redact_pii_in_storage"`
	MaxTokens          int    `json:"max_tokens"` // 0: no cap
	Notice             string `json:"notice"`     // disclosure text to add to the answer
	LogLevel           string `json:"log_level"`
}

// Fail modes.
const (
	FailOpen   = "open"
	FailClosed = "closed"
)
