package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/policies"
)

// Decider makes the policy decision for one request (policies.Engine implements it).
type Decider interface {
	Decide(ctx context.Context, in policies.Input) (policies.Decision, error)
}

// Assignment is where one request goes: the concrete model, the route (candidate or
// baseline) and the trial's stage.
type Assignment struct {
	Model string
	Route string
	Stage string
	// Shadow names the candidate when this request also gets a shadow copy (its
	// answer is monitored, never returned); "" for none.
	Shadow string
	// Fallback names the baseline when a failing candidate may be replaced by it
	// for this request; "" for none.
	Fallback string
}

// Assigner picks the model for a user of a trial (deploy.Assigner behind an adapter,
// since the gateway does not import deploy).
type Assigner interface {
	// Assign returns the sticky assignment of a user of a cohort for one request
	// (the request id samples shadow copies); false for an unknown trial.
	Assign(trial, user, cohort, requestID string) (Assignment, bool)
	// Route returns the model behind a route (candidate or baseline) of a trial, for
	// a policy's route override.
	Route(trial, route string) (string, bool)
}

// Publisher takes finished interactions; it must not block (events.Publisher).
type Publisher interface {
	Publish(in *events.Interaction) error
	// Full reports that a new interaction could not be kept (NATS unavailable and
	// the spool full): a trial that fails closed then refuses requests.
	Full() bool
}

var (
	_ Publisher = (*events.Publisher)(nil)
	_ Decider   = (*policies.Engine)(nil)
)

// Trial is what the gateway needs to know of one trial.
type Trial struct {
	// ID is the trial id.
	ID string
	// LogicalModel is the model name clients use (GET /v1/models lists it).
	LogicalModel string
	// FailMode decides what happens when the policy cannot decide: policies.FailOpen
	// serves the request, policies.FailClosed (default) refuses it with 503.
	FailMode string
	// Decider evaluates the trial's policy.
	Decider Decider
	// Extractor computes the prompt signals the policy sees.
	Extractor *policies.Extractor
	// Fallback sends a request to the baseline when the candidate fails before any
	// answer byte reached the client (error, timeout, open circuit).
	Fallback bool
	// Start and End bound the trial; requests outside get 403 trial_not_active.
	// Zero values leave that side open.
	Start, End time.Time
	// Caps are per-user limits counted by the gateway (policy fact over_quota).
	Caps Caps
	// ContentAccess lets the policy see raw message text (input.content); slower
	// and less private, so off unless the trial opts in.
	ContentAccess bool
	// Limits are hard per-key and per-user rate limits and concurrency caps:
	// 429 with Retry-After, before the policy runs (limits.go).
	Limits Limits
	// RedactPII stores every interaction of the trial with PII redacted,
	// whatever the policy's obligations say.
	RedactPII bool
	// Tenants and Keys, when not empty, are the trial's participants: a key of
	// another tenant, or a key (by Principal.KeyID) not listed, gets 403
	// not_a_participant.
	Tenants, Keys []string
	// Cohorts assign users to cohorts in order (the first that takes a user
	// wins); a user none takes keeps the cohort of their API key.
	Cohorts []CohortRule
}

// Upstream is one OpenAI-compatible model endpoint.
type Upstream struct {
	// Name is the model's name in Stagegate (what X-Stagegate-Model shows).
	Name string
	// BaseURL ends in /v1; /chat/completions is appended.
	BaseURL string
	// Model is the model id sent upstream; defaults to Name.
	Model string
	// APIKey is sent as a bearer token upstream; never logged.
	APIKey string
	// Timeout bounds one call end to end; 0 uses the gateway's UpstreamTimeout.
	Timeout time.Duration
	// ConnectTimeout bounds opening a connection (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// FirstTokenTimeout bounds the wait for a stream's first chunk after the model
	// answered; 0 leaves only Timeout.
	FirstTokenTimeout time.Duration
	// BreakerFailures is the number of consecutive failures that open the model's
	// circuit (default DefaultBreakerFailures).
	BreakerFailures int
	// BreakerCooldown is how long an open circuit refuses calls before one probe
	// (default DefaultBreakerCooldown).
	BreakerCooldown time.Duration
	// MaxConcurrency bounds the calls in flight to this model, shadow copies
	// included; past it a call gets 503 (a candidate falls back to the baseline
	// when the trial allows it, a shadow copy is skipped). 0 is unbounded.
	MaxConcurrency int
}

// Principal is who an API key belongs to.
type Principal struct {
	KeyID      string // a name for the key, safe to log
	KeyName    string // the key's name, when it has one (a trial's participants list keys by name)
	Trial      string
	Tenant     string
	Cohort     string
	Attributes map[string]string
}

// Keys maps API keys to principals. Only SHA-256 hashes of keys are held.
type Keys struct {
	m map[[sha256.Size]byte]Principal
}

// HashKey returns the hex SHA-256 of an API key, the form configs store.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKeys builds the key table from hex SHA-256 hashes.
func NewKeys(byHash map[string]Principal) (*Keys, error) {
	k := &Keys{m: make(map[[sha256.Size]byte]Principal, len(byHash))}
	var errs []error
	for h, p := range byHash {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Errorf("key %s: hash must be 64 hex digits (sha256)", p.KeyID))
			continue
		}
		k.m[[sha256.Size]byte(raw)] = p
	}
	return k, errors.Join(errs...)
}

// Lookup finds the principal of a presented key. Hashing first means the map
// lookup compares digests, never the secret itself.
func (k *Keys) Lookup(key string) (Principal, bool) {
	p, ok := k.m[sha256.Sum256([]byte(key))]
	return p, ok
}
