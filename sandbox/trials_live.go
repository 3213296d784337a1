package sandbox

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/trial"
)

// Applied trials go into service. A trial definition applied through the admin
// API (stagegate trial apply) is stored as a numbered revision (admin_trials.go)
// and then served by every gateway: this process's at once, the others within
// gateway.trial_refresh, when their poll sees a newer revision in the store.
//
// What a definition sets in service: the window (start, end), participants
// (tenants and key names; 403 not_a_participant for others), cohorts (list,
// percentage by a hash of the pseudonymous user id, key attribute), the models
// (logical name, candidate, baseline), topics, caps, PII redaction in storage,
// and the policy (folder, built-in or bundle; content access; fail mode).
//
// What stays with the sandbox configuration for a trial it also configures:
// rate limits, per-request fallback, the policy poll interval and whether the
// trial runs policy experiments (such a trial's policy cannot be replaced by an
// applied definition: the experiment deciders wrap it). The rollout plan keeps
// its stage and weights (the rollout controller owns them); an applied
// definition only sets its candidate and baseline. A trial new to the sandbox
// starts at the pilot stage with its cohorts on the candidate (everyone on the
// baseline when it names no cohorts) until a rollout says otherwise.

// DefaultTrialRefresh is how often a gateway checks the store for trial
// revisions applied through another process's admin API.
const DefaultTrialRefresh = 5 * time.Second

const (
	// trialSyncTimeout bounds one pass over the stored trials (compiling a
	// policy can take a while on a busy machine; the poll interval may be short).
	trialSyncTimeout = 30 * time.Second
	// trialRetryAfter is how long a revision that could not be served waits
	// before it is tried again (a model may have been registered since, or
	// the store was briefly unreachable).
	trialRetryAfter = 30 * time.Second
)

// failure is a stored revision that could not be put into service.
type failure struct {
	revision int
	retryAt  time.Time
}

// liveTrials keeps the gateway's trials in step with the stored definitions.
type liveTrials struct {
	s *Sandbox

	// applying is held from prepare to commit, so the admin API and the poll
	// never put two revisions of a trial into service at once.
	applying sync.Mutex
	mu       sync.Mutex         // guards the maps
	served   map[string]int     // trial -> stored revision in service
	source   map[string]string  // trial -> where its policy in service comes from
	failing  map[string]failure // trial -> the revision that could not be served

	poll poller
}

func newLiveTrials(s *Sandbox) *liveTrials {
	return &liveTrials{s: s, served: map[string]int{}, source: map[string]string{}, failing: map[string]failure{}}
}

// prepared is a definition made ready to serve, not yet in service.
type prepared struct {
	def      *trial.Trial
	revision int
	gw       *gateway.Trial
	plan     deploy.Plan
	reloader *policies.Reloader // a new policy engine, nil when the one in service stays
	source   string             // where the policy comes from, to notice a change
}

// policySource names where a definition's policy comes from.
func policySource(t *trial.Trial) string {
	return t.Policy.Dir + "|" + t.Policy.Bundle + "|" + t.Query()
}

// configPolicySource is policySource for a configured trial.
func configPolicySource(tc TrialConfig) string {
	q := tc.Query
	if q == "" {
		q = policies.DefaultQuery
	}
	return tc.Policy + "||" + q
}

// prepare checks that this gateway can serve t and builds what it needs: the
// models must be known, the policy must compile (a new engine is started only
// when the policy's source changed). Nothing is in service until commit.
func (l *liveTrials) prepare(ctx context.Context, t *trial.Trial, revision int) (*prepared, error) {
	s := l.s
	tc, configured := s.configuredTrial(t.ID)
	var errs []error
	for _, m := range []struct{ role, name string }{{"models.candidate", t.Models.Candidate}, {"models.baseline", t.Models.Baseline}} {
		if !s.knownModel(ctx, m.name) {
			errs = append(errs, fmt.Errorf("%s: model %q is neither configured nor registered (stagegate model add)", m.role, m.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &prepared{def: t, revision: revision, source: policySource(t)}
	// The policy in service: the one a definition put there, else the
	// configuration's. The same source keeps its engine (and its hot reload).
	l.mu.Lock()
	serving := l.source[t.ID]
	l.mu.Unlock()
	if serving == "" && configured {
		serving = configPolicySource(tc)
	}
	cur, inService := s.gw.Trial(t.ID)
	same := inService && serving == p.source
	if configured && tc.Experiments && !same {
		return nil, fmt.Errorf("policy: trial %s runs policy experiments, so it keeps the policy of the sandbox configuration (%s); apply the definition with that policy", t.ID, tc.Policy)
	}
	var dec policies.Decider
	if same {
		dec = cur.Decider
	} else {
		rc, err := t.ReloaderConfig()
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		rc.PollInterval = tc.PolicyPoll
		eng, err := policies.NewReloader(ctx, rc, policies.ReloaderDeps{Logger: s.log, Clock: s.clk})
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if err := eng.Start(ctx); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		p.reloader, dec = eng, eng
	}
	ext, err := policies.NewExtractor(policies.Topics(t.Purposes.Topics))
	if err != nil {
		p.discard(ctx)
		return nil, fmt.Errorf("purposes.topics: %w", err)
	}
	cohorts, names := cohortRules(t)
	p.gw = &gateway.Trial{ID: t.ID, LogicalModel: t.Models.LogicalModel, FailMode: t.Policy.FailMode,
		Decider: dec, Extractor: ext, Start: t.Start, End: t.End, ContentAccess: t.Policy.ContentAccess,
		Caps:   gateway.Caps{RequestsPerUserPerDay: t.Caps.RequestsPerUserPerDay, ConcurrentStreams: t.Caps.ConcurrentStreams, TokensPerRequest: t.Caps.TokensPerRequest},
		Limits: tc.Limits.gateway(), RedactPII: t.DataHandling.RedactPII,
		Tenants: t.Participants.Tenants, Keys: t.Participants.Keys, Cohorts: cohorts}
	if plan, ok := s.assigner.Plan(t.ID); ok {
		plan.Candidate, plan.Baseline = t.Models.Candidate, t.Models.Baseline
		p.plan = plan
	} else {
		p.plan = deploy.Plan{Trial: t.ID, Candidate: t.Models.Candidate, Baseline: t.Models.Baseline, Stage: deploy.StageCanary, Fallback: tc.Fallback}
		if len(names) > 0 {
			p.plan.Stage, p.plan.CandidateWeight, p.plan.Cohorts = deploy.StagePilot, deploy.WeightScale, names
		}
	}
	if err := p.plan.Validate(); err != nil {
		p.discard(ctx)
		return nil, err
	}
	return p, nil
}

// discard stops the engine a prepared definition started.
func (p *prepared) discard(ctx context.Context) {
	if p.reloader != nil {
		_ = p.reloader.Stop(ctx)
	}
}

// commit puts a prepared definition into service: the plan first (so the
// trial's first request finds one), then the trial, then the old engine stops.
func (l *liveTrials) commit(ctx context.Context, p *prepared) error {
	s := l.s
	if _, err := s.assigner.Update(p.plan); err != nil {
		p.discard(ctx)
		return err
	}
	if err := s.gw.SetTrial(p.gw); err != nil {
		p.discard(ctx)
		return err
	}
	if p.reloader != nil {
		if old := s.setPolicy(p.def.ID, p.reloader); old != nil {
			_ = old.Stop(ctx)
		}
	}
	l.mu.Lock()
	_, before := l.served[p.def.ID]
	l.served[p.def.ID], l.source[p.def.ID] = p.revision, p.source
	delete(l.failing, p.def.ID)
	l.mu.Unlock()
	if !before {
		// Keys of a trial new to this gateway were left out of its key table
		// (it only holds keys of trials it serves); rebuild it now.
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), trialSyncTimeout)
		defer cancel()
		if err := s.keys.refresh(kctx, true); err != nil {
			s.log.Warn("api keys not refreshed after a trial came into service", "trial", p.def.ID, "err", err)
		}
	}
	s.log.Info("trial in service", "trial", p.def.ID, "revision", p.revision, "stage", p.plan.Stage,
		"candidate", p.plan.Candidate, "baseline", p.plan.Baseline, "policy_revision", policyRevision(p.gw.Decider))
	return nil
}

func policyRevision(d policies.Decider) string {
	if r, ok := d.(*policies.Reloader); ok {
		return r.Status().Revision
	}
	return ""
}

// cohortRules turns the definition's cohorts into the gateway's rules;
// percentage cohorts take consecutive bucket ranges in the order listed.
func cohortRules(t *trial.Trial) ([]gateway.CohortRule, []string) {
	var rules []gateway.CohortRule
	var names []string
	from := 0
	for _, c := range t.Participants.Cohorts {
		r := gateway.CohortRule{Name: c.Name}
		switch {
		case len(c.Users) > 0:
			r.Users = make(map[string]bool, len(c.Users))
			for _, u := range c.Users {
				r.Users[u] = true
			}
		case c.Percent > 0:
			to := min(from+int(c.Percent*gateway.CohortScale/100+0.5), gateway.CohortScale)
			r.From, r.To, from = from, to, to
		case c.Attribute != nil:
			r.Attribute, r.Values = c.Attribute.Name, c.Attribute.Values
		}
		rules = append(rules, r)
		names = append(names, c.Name)
	}
	return rules, names
}

// applyRevision parses a stored revision and puts it into service.
func (l *liveTrials) applyRevision(ctx context.Context, rev incidents.TrialRevision) error {
	t, err := trial.Parse(rev.Trial+".yaml", []byte(rev.Source))
	if err != nil {
		return err
	}
	p, err := l.prepare(ctx, t, rev.Revision)
	if err != nil {
		return err
	}
	return l.commit(ctx, p)
}

// sync puts every stored trial whose newest revision is not in service into
// service. A revision that cannot be served is logged once and tried again
// after trialRetryAfter; meanwhile the trial keeps what it served before.
func (l *liveTrials) sync(ctx context.Context) error {
	latest, err := l.s.store.Trials(ctx)
	if err != nil {
		return err
	}
	sort.Slice(latest, func(i, j int) bool { return latest[i].Trial < latest[j].Trial })
	for _, rev := range latest {
		if err := l.syncOne(ctx, rev); err != nil {
			l.mu.Lock()
			first := l.failing[rev.Trial].revision != rev.Revision
			l.failing[rev.Trial] = failure{revision: rev.Revision, retryAt: l.s.clk.Now().Add(trialRetryAfter)}
			l.mu.Unlock()
			if first { // logged once per revision; retried quietly
				l.s.log.Error("trial revision not in service; the gateway keeps what it served", "trial", rev.Trial,
					"revision", rev.Revision, "retry_every", trialRetryAfter, "err", err)
			}
		}
	}
	return nil
}

// syncOne puts rev into service unless it is (or failed before).
func (l *liveTrials) syncOne(ctx context.Context, rev incidents.TrialRevision) error {
	l.applying.Lock()
	defer l.applying.Unlock()
	l.mu.Lock()
	f := l.failing[rev.Trial]
	done := l.served[rev.Trial] == rev.Revision || (f.revision == rev.Revision && l.s.clk.Now().Before(f.retryAt))
	l.mu.Unlock()
	if done {
		return nil
	}
	full, err := l.s.store.TrialRevision(ctx, rev.Trial, rev.Revision)
	if err != nil {
		return err
	}
	return l.applyRevision(ctx, full)
}

// start polls the store every interval until halt.
func (l *liveTrials) start(interval time.Duration) {
	l.poll.start(interval, DefaultTrialRefresh, func() {
		ctx, cancel := context.WithTimeout(context.Background(), trialSyncTimeout)
		defer cancel()
		if err := l.sync(ctx); err != nil {
			l.s.log.Warn("stored trials not checked", "err", err)
		}
	})
}

func (l *liveTrials) halt() {
	if l != nil {
		l.poll.halt()
	}
}

// trialState is what the metrics show of a trial's stored definitions.
type trialState struct {
	revision int  // the stored revision in service; 0: the configuration's trial
	refused  bool // the newest stored revision could not be put into service
}

// states reports every trial of this gateway, configured or applied.
func (l *liveTrials) states() map[string]trialState {
	out := map[string]trialState{}
	if l == nil {
		return out
	}
	for _, tc := range l.s.cfg.Trials {
		out[tc.ID] = trialState{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, rev := range l.served {
		out[id] = trialState{revision: rev}
	}
	for id, f := range l.failing {
		st := out[id]
		st.refused = f.revision != st.revision
		out[id] = st
	}
	return out
}

// ids lists the trials put into service from stored definitions.
func (l *liveTrials) ids() []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.served))
	for id := range l.served {
		out = append(out, id)
	}
	return out
}

// configuredTrial returns the sandbox configuration's trial id.
func (s *Sandbox) configuredTrial(id string) (TrialConfig, bool) {
	for _, t := range s.cfg.Trials {
		if t.ID == id {
			return t, true
		}
	}
	return TrialConfig{}, false
}

// knownModel reports whether name is configured or registered.
func (s *Sandbox) knownModel(ctx context.Context, name string) bool {
	if s.configuredModel(name) {
		return true
	}
	if s.rollouts != nil && s.rollouts.models != nil {
		if _, err := s.rollouts.models.Get(ctx, name); err == nil {
			return true
		}
	}
	return false
}

// setPolicy installs the policy engine of a trial and returns the one it replaces.
func (s *Sandbox) setPolicy(id string, r *policies.Reloader) *policies.Reloader {
	s.policiesMu.Lock()
	defer s.policiesMu.Unlock()
	old := s.policies[id]
	if s.policies == nil {
		s.policies = map[string]*policies.Reloader{}
	}
	s.policies[id] = r
	return old
}
