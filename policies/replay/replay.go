package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/policies"
)

// Change kinds, the groups of a Report.
const (
	AllowedToDenied    = "allowed_to_denied"
	DeniedToAllowed    = "denied_to_allowed"
	RouteChanged       = "route_changed"
	ObligationsChanged = "obligations_changed"
	ReasonsChanged     = "reasons_changed"
)

// kindOrder is the order groups are reported in.
var kindOrder = []string{AllowedToDenied, DeniedToAllowed, RouteChanged, ObligationsChanged, ReasonsChanged}

// DefaultMaxExamples is how many interaction ids a change group lists.
const DefaultMaxExamples = 5

// Outcome is the part of a decision an interaction records, what replay compares.
type Outcome struct {
	Allow              bool              `json:"allow"`
	Reasons            []policies.Reason `json:"reasons"`
	Route              string            `json:"route"`
	RedactPIIInStorage bool              `json:"redact_pii_in_storage"`
	MaxTokens          int               `json:"max_tokens"`
	Notice             string            `json:"notice"`
}

// OutcomeOf is what an interaction records of d.
func OutcomeOf(d policies.Decision) Outcome {
	return Outcome{
		Allow: d.Allow, Reasons: d.Reasons, Route: d.Route,
		RedactPIIInStorage: d.Obligations.RedactPIIInStorage, MaxTokens: d.Obligations.MaxTokens, Notice: d.Obligations.Notice,
	}
}

// Record is one recorded decision.
type Record struct {
	// ID is the interaction id.
	ID string
	// Input is the canonical input the policy saw; nil when the interaction
	// recorded none (then it is counted as skipped).
	Input []byte
	// InputHash is the recorded hash of Input.
	InputHash string
	// Revision is the policy revision that made the recorded decision.
	Revision string
	// Recorded is the recorded decision.
	Recorded Outcome
	// Rules are what the trial imposed on top of the policy when it was
	// recorded; they are folded into the candidate's decision the same way.
	Rules *events.TrialRules
}

// FromInteraction takes the recorded decision out of an interaction.
func FromInteraction(in *events.Interaction) Record {
	d := in.Decision
	r := Record{
		ID: in.ID, Input: d.Input, InputHash: d.InputHash, Revision: d.PolicyRevision, Rules: d.TrialRules,
		Recorded: Outcome{
			Allow: d.Allow, Route: d.Route, Reasons: make([]policies.Reason, len(d.Reasons)),
			RedactPIIInStorage: d.Obligations.RedactPIIInStorage, MaxTokens: d.Obligations.MaxTokens, Notice: d.Obligations.Notice,
		},
	}
	for i, x := range d.Reasons {
		r.Recorded.Reasons[i] = policies.Reason{Code: x.Code, Message: x.Message}
	}
	return r
}

// Config tunes Run.
type Config struct {
	// Workers decide in parallel (default GOMAXPROCS).
	Workers int
	// MaxExamples bounds the interaction ids listed per change group (default 5).
	MaxExamples int
}

// Deps are what Run takes from outside.
type Deps struct {
	// Clock times the run; nil is the wall clock.
	Clock clock.Clock
}

// Report says how the candidate would have decided the recorded traffic.
type Report struct {
	// Candidate is the revision replayed.
	Candidate string `json:"candidate"`
	// Read counts recorded interactions read; Replayed those decided again.
	Read     int `json:"read"`
	Replayed int `json:"replayed"`
	// Skipped counts interactions without a recorded input (refused before the
	// policy, or recorded by an older gateway).
	Skipped int `json:"skipped"`
	// Errors counts inputs the candidate could not decide; InputMismatch
	// recorded inputs whose hash is not the recorded hash (they are still
	// replayed). Examples of each are in ErrorExamples.
	Errors        int      `json:"errors"`
	InputMismatch int      `json:"input_mismatch"`
	ErrorExamples []string `json:"error_examples"`
	// Unchanged counts decisions the candidate makes exactly as recorded.
	Unchanged int `json:"unchanged"`
	// Changes are the groups of changed decisions, in a fixed order; a
	// decision whose allow flipped is only in its flip group, any other may be
	// in several.
	Changes []Group `json:"changes"`
	// RecordedRevisions counts the replayed interactions by the revision that
	// decided them.
	RecordedRevisions map[string]int `json:"recorded_revisions"`
	// MemoHitRate is the candidate's memo hit rate over the run.
	MemoHitRate float64 `json:"memo_hit_rate"`
	// Seconds is how long the run took.
	Seconds float64 `json:"seconds"`
}

// Group is one kind of change.
type Group struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
	// Detail counts the group by a finer key: the new reason codes of
	// allowed→denied, the old ones of denied→allowed, "from→to" of a route,
	// the obligation fields that changed, the reason codes before→after.
	Detail map[string]int `json:"detail"`
	// Examples are interaction ids.
	Examples []string `json:"examples"`
}

// Changed is the number of decisions that would change.
func (r *Report) Changed() int { return r.Replayed - r.Errors - r.Unchanged }

// Source feeds recorded decisions to Run by calling yield for each, in any
// order, until it has no more or yield returns an error.
type Source func(ctx context.Context, yield func(Record) error) error

// statser is what Run reads the memo hit rate from.
type statser interface{ Stats() policies.Stats }

// Run decides every record of src again with the candidate and reports the
// differences. An error from src ends the run with that error.
func Run(ctx context.Context, candidate policies.Decider, src Source, cfg Config, deps Deps) (*Report, error) {
	if cfg.Workers < 0 || cfg.MaxExamples < 0 {
		return nil, fmt.Errorf("%w: Workers and MaxExamples must not be negative", ErrConfig)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxExamples == 0 {
		cfg.MaxExamples = DefaultMaxExamples
	}
	clk := clock.OrReal(deps.Clock)
	start := clk.Now()
	var before policies.Stats
	st, hasStats := candidate.(statser)
	if hasStats {
		before = st.Stats()
	}
	c := newCollector(cfg.MaxExamples)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan Record, 4*cfg.Workers)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for rec := range work {
				c.add(rec, decide(ctx, candidate, rec))
			}
		})
	}
	srcErr := src(ctx, func(rec Record) error {
		select {
		case work <- rec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	if srcErr != nil {
		return nil, srcErr
	}
	rep := c.report()
	if hasStats {
		after := st.Stats()
		if hits, misses := after.Hits-before.Hits, after.Misses-before.Misses; hits+misses > 0 {
			rep.MemoHitRate = float64(hits) / float64(hits+misses)
		}
		rep.Candidate = after.Revision
	}
	rep.Seconds = clk.Now().Sub(start).Seconds()
	return rep, nil
}

// result is one record's outcome under the candidate.
type result struct {
	skipped  bool
	err      error
	mismatch bool
	got      Outcome
}

func decide(ctx context.Context, candidate policies.Decider, rec Record) result {
	if len(rec.Input) == 0 {
		return result{skipped: true}
	}
	sum := sha256.Sum256(rec.Input)
	mismatch := rec.InputHash != "" && rec.InputHash != policies.InputHashPrefix+hex.EncodeToString(sum[:])
	in, err := policies.ParseInput(rec.Input)
	if err != nil {
		return result{err: err, mismatch: mismatch}
	}
	d, err := candidate.Decide(ctx, in)
	if err != nil {
		return result{err: err, mismatch: mismatch}
	}
	got := OutcomeOf(d)
	got.RedactPIIInStorage, got.MaxTokens = rec.Rules.Apply(got.RedactPIIInStorage, got.MaxTokens)
	return result{got: got, mismatch: mismatch}
}

// collector merges results from the workers.
type collector struct {
	mu          sync.Mutex
	maxExamples int
	rep         Report
	groups      map[string]*Group
}

func newCollector(maxExamples int) *collector {
	return &collector{
		maxExamples: maxExamples,
		rep:         Report{RecordedRevisions: map[string]int{}, ErrorExamples: []string{}},
		groups:      map[string]*Group{},
	}
}

func (c *collector) add(rec Record, res result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Read++
	if res.skipped {
		c.rep.Skipped++
		return
	}
	c.rep.Replayed++
	c.rep.RecordedRevisions[rec.Revision]++
	if res.mismatch {
		c.rep.InputMismatch++
		c.example(&c.rep.ErrorExamples, rec.ID+" (input hash mismatch)")
	}
	if res.err != nil {
		c.rep.Errors++
		c.example(&c.rep.ErrorExamples, rec.ID+": "+res.err.Error())
		return
	}
	was, now := rec.Recorded, res.got
	changed := false
	note := func(kind, detail string) {
		changed = true
		g := c.groups[kind]
		if g == nil {
			g = &Group{Kind: kind, Detail: map[string]int{}, Examples: []string{}}
			c.groups[kind] = g
		}
		g.Count++
		g.Detail[detail]++
		c.example(&g.Examples, rec.ID)
	}
	switch {
	case was.Allow && !now.Allow:
		note(AllowedToDenied, codes(now.Reasons))
	case !was.Allow && now.Allow:
		note(DeniedToAllowed, codes(was.Reasons))
	default:
		if was.Route != now.Route {
			note(RouteChanged, routeName(was.Route)+"→"+routeName(now.Route))
		}
		var fields []string
		if was.MaxTokens != now.MaxTokens {
			fields = append(fields, "max_tokens")
		}
		if was.Notice != now.Notice {
			fields = append(fields, "notice")
		}
		if was.RedactPIIInStorage != now.RedactPIIInStorage {
			fields = append(fields, "redact_pii_in_storage")
		}
		if len(fields) > 0 {
			note(ObligationsChanged, strings.Join(fields, ","))
		}
		if !slices.Equal(was.Reasons, now.Reasons) {
			note(ReasonsChanged, codes(was.Reasons)+"→"+codes(now.Reasons))
		}
	}
	if !changed {
		c.rep.Unchanged++
	}
}

// example keeps the smallest ids (interaction ids are time-ordered: the
// earliest), so a report does not depend on the order workers finish in.
func (c *collector) example(list *[]string, s string) {
	i, _ := slices.BinarySearch(*list, s)
	if i >= c.maxExamples {
		return
	}
	*list = slices.Insert(*list, i, s)
	if len(*list) > c.maxExamples {
		*list = (*list)[:c.maxExamples]
	}
}

func (c *collector) report() *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := c.rep
	rep.Changes = []Group{}
	for _, k := range kindOrder {
		if g := c.groups[k]; g != nil {
			rep.Changes = append(rep.Changes, *g)
		}
	}
	rep.RecordedRevisions = maps.Clone(rep.RecordedRevisions)
	return &rep
}

func codes(rs []policies.Reason) string {
	if len(rs) == 0 {
		return "(none)"
	}
	cs := make([]string, len(rs))
	for i, r := range rs {
		cs[i] = r.Code
	}
	return strings.Join(cs, ",")
}

func routeName(r string) string {
	if r == "" {
		return "rollout"
	}
	return r
}

// Since is the start time of a replay window ending now.
func Since(now time.Time, window time.Duration) time.Time {
	if window <= 0 {
		return time.Time{}
	}
	return now.Add(-window)
}
