package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// The trials a gateway serves live in a copy-on-write table, so a trial
// applied while traffic flows (SetTrial) takes effect for the next request
// without a lock on the request path; a request in flight keeps the *Trial it
// started with.

// CohortScale is the resolution of percentage cohorts: a user's cohort bucket
// is in [0, CohortScale), so 1 bucket is 0.01 %.
const CohortScale = 10000

// CohortRule assigns a trial's users to a named cohort by exactly one of:
// a list of pseudonymous user ids, a range of hash buckets (a percentage), or
// an attribute of the caller's API key.
type CohortRule struct {
	// Name is the cohort the policy and the rollout plan see.
	Name string
	// Users are pseudonymous user ids (as the gateway records them).
	Users map[string]bool
	// From and To bound the user's bucket (CohortBucket), From <= b < To; To 0: no
	// percentage rule.
	From, To int
	// Attribute and Values: a caller whose key carries Attribute with one of Values.
	Attribute string
	Values    []string
}

// matches reports whether the user (bucket b, key attributes attrs) is in the cohort.
func (c *CohortRule) matches(user string, b int, attrs map[string]string) bool {
	switch {
	case c.Users != nil:
		return c.Users[user]
	case c.To > 0:
		return b >= c.From && b < c.To
	case c.Attribute != "":
		v, ok := attrs[c.Attribute]
		return ok && slices.Contains(c.Values, v)
	}
	return false
}

// CohortBucket maps a pseudonymous user of a trial to [0, CohortScale): stable,
// and independent of the rollout's candidate bucket (another salt), so
// percentage cohorts and candidate weights do not select the same users.
func CohortBucket(trial, user string) int {
	h := sha256.New()
	h.Write([]byte("cohort\x00"))
	h.Write([]byte(trial))
	h.Write([]byte{0})
	h.Write([]byte(user))
	var sum [sha256.Size]byte
	return int(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % CohortScale)
}

// trialEntry is a served trial and its encoded GET /v1/models answer.
type trialEntry struct {
	t      *Trial
	models []byte
}

type trialTable map[string]*trialEntry

// validateTrial reports every problem of t at once.
func validateTrial(id string, t *Trial) error {
	if t == nil {
		return fmt.Errorf("gateway: trial %s is nil", id)
	}
	var errs []error
	if t.Decider == nil || t.Extractor == nil {
		errs = append(errs, fmt.Errorf("gateway: trial %s needs a decider and an extractor", id))
	}
	if t.LogicalModel == "" {
		errs = append(errs, fmt.Errorf("gateway: trial %s has no logical model", id))
	}
	if err := t.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: trial %s: %w", id, err))
	}
	for i, c := range t.Cohorts {
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("gateway: trial %s: cohort %d has no name", id, i))
		}
		if c.From < 0 || c.To > CohortScale || (c.To > 0 && c.From >= c.To) {
			errs = append(errs, fmt.Errorf("gateway: trial %s: cohort %s: bucket range [%d, %d) is not within [0, %d)", id, c.Name, c.From, c.To, CohortScale))
		}
	}
	return errors.Join(errs...)
}

// SetTrial installs or replaces a trial; requests that authenticate afterwards
// use it. Caps and rate-limit counters are kept across a replacement.
func (g *Gateway) SetTrial(t *Trial) error {
	if t == nil {
		return errors.New("gateway: nil trial")
	}
	if err := validateTrial(t.ID, t); err != nil {
		return err
	}
	e := &trialEntry{t: t, models: modelList(t.LogicalModel, g.clk.Now().Unix())}
	g.trialsMu.Lock()
	defer g.trialsMu.Unlock()
	next := maps.Clone(*g.trials.Load())
	next[t.ID] = e
	g.trials.Store(&next)
	return nil
}

// Trial returns the trial the gateway serves under id, if any.
func (g *Gateway) Trial(id string) (*Trial, bool) {
	e := (*g.trials.Load())[id]
	if e == nil {
		return nil, false
	}
	return e.t, true
}

// checkParticipant admits only the tenants and keys the trial lists (none
// listed: every key of the trial).
func (g *Gateway) checkParticipant(x *exchange) error {
	t, p := x.trial, x.principal
	if len(t.Tenants) > 0 && !slices.Contains(t.Tenants, p.Tenant) {
		return Error(http.StatusForbidden, fmt.Errorf("%w: tenant %q is not a participant of trial %s", ErrNotParticipant, p.Tenant, t.ID))
	}
	if len(t.Keys) > 0 && !slices.Contains(t.Keys, p.KeyID) && (p.KeyName == "" || !slices.Contains(t.Keys, p.KeyName)) {
		return Error(http.StatusForbidden, fmt.Errorf("%w: key %q is not a participant of trial %s", ErrNotParticipant, p.KeyID, t.ID))
	}
	return nil
}

// assignCohort puts the (already pseudonymised) user into the first of the
// trial's cohorts that takes them; when none does, the cohort the API key
// names stays. The policy input, the rollout plan and the record all see it.
func (g *Gateway) assignCohort(x *exchange) {
	rules := x.trial.Cohorts
	if len(rules) == 0 {
		return
	}
	b := -1
	for i := range rules {
		c := &rules[i]
		if c.To > 0 && b < 0 {
			b = CohortBucket(x.trial.ID, x.user)
		}
		if c.matches(x.user, b, x.principal.Attributes) {
			x.in.Cohort = c.Name
			return
		}
	}
}
