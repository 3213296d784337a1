package policies

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/stagegate/stagegate/internal/clock"
)

// DefaultQuery is the rule the engine evaluates unless Config.Query names another.
const DefaultQuery = "data.stagegate.decision"

// Config of the engine.
type Config struct {
	// FS holds the policy root: *.rego modules (Rego v1) and *.json data files. A
	// JSON object in data.json at the root becomes data; one in folder a/b becomes
	// data.a.b, as OPA lays out data files. *_test.rego files are skipped, and so
	// are hidden files and folders. Required. Use LoadDir for a folder on disk,
	// fs.Sub(Builtin(), DemoPolicy) for the demo trial.
	FS fs.FS
	// Query is the rule to evaluate, a reference into data. Default DefaultQuery.
	Query string
	// Clock measures Decision.EvalMicros. Default: the wall clock. (Policies never
	// read the time: they use input.time; see README.md.)
	Clock clock.Clock
	// MemoEntries bounds the decision memo (an LRU keyed by the hash of the input
	// fields the policy reads). 0 means DefaultMemoEntries; -1 turns the memo off.
	MemoEntries int
}

// withDefaults returns c with empty fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Query == "" {
		c.Query = DefaultQuery
	}
	if c.MemoEntries == 0 {
		c.MemoEntries = DefaultMemoEntries
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// Validate reports every problem of c at once, each wrapping ErrConfig. An empty
// Query is valid (it means DefaultQuery).
func (c Config) Validate() error {
	var errs []error
	if c.FS == nil {
		errs = append(errs, fmt.Errorf("%w: FS is required", ErrConfig))
	}
	if c.Query != "" {
		if _, err := parseQuery(c.Query); err != nil {
			errs = append(errs, fmt.Errorf("%w: Query: %w", ErrConfig, err))
		}
	}
	if c.MemoEntries < -1 {
		errs = append(errs, fmt.Errorf("%w: MemoEntries %d: want -1 (off), 0 (default) or a positive bound", ErrConfig, c.MemoEntries))
	}
	return errors.Join(errs...)
}

// parseQuery accepts a plain reference into data, such as data.stagegate.decision.
func parseQuery(q string) (ast.Ref, error) {
	ref, err := ast.ParseRef(q)
	if err != nil {
		return nil, fmt.Errorf("%q is not a reference: %w", q, err)
	}
	if !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 2 || !ref.IsGround() {
		return nil, fmt.Errorf("%q is not a reference into data such as %s", q, DefaultQuery)
	}
	return ref, nil
}

// Decider makes policy decisions. *Engine (one revision, memoised) and
// *Reloader (the current revision of a watched folder or bundle) are the two;
// the gateway depends on this interface.
type Decider interface {
	Decide(ctx context.Context, in Input) (Decision, error)
}

var _ Decider = (*Engine)(nil)

// Engine evaluates one compiled policy. Its policy is immutable after New and it
// is safe for concurrent use; a policy change means a new Engine (Reloader swaps
// it), and with it a new, empty memo.
type Engine struct {
	query    string
	pq       rego.PreparedEvalQuery
	revision string
	clock    clock.Clock
	proj     *projection
	memo     *memo // nil when off
	memoCap  int

	evals     atomic.Uint64
	evalErrs  atomic.Uint64
	evalNanos atomic.Uint64
}

// Stats are an engine's counters since New. Hits, Misses and Evictions are zero
// when the memo is off.
type Stats struct {
	// Revision of the engine's policy.
	Revision string `json:"revision"`
	// MemoCapacity bounds the memo; 0 when it is off.
	MemoCapacity int `json:"memo_capacity"`
	// MemoEntries is the number of decisions memoised now.
	MemoEntries int `json:"memo_entries"`
	// Hits and Misses count memo lookups; Evictions, entries dropped for space.
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Evictions uint64 `json:"evictions"`
	// Evaluations counts fresh OPA evaluations; EvalErrors those that failed.
	Evaluations uint64 `json:"evaluations"`
	EvalErrors  uint64 `json:"eval_errors"`
	// EvalNanos is the total time of fresh evaluations (mean = EvalNanos/Evaluations).
	EvalNanos uint64 `json:"eval_nanos"`
	// KeyFields are the input fields the memo keys on: those the policy can read.
	KeyFields []string `json:"key_fields"`
}

// HitRate is Hits/(Hits+Misses), 0 before the first lookup.
func (s Stats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// New loads, parses and compiles the policy in cfg.FS once and prepares the
// query for evaluation. A broken policy is an ErrCompile whose message names
// file:line; a query that matches no rule of the policy is one too.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ref, err := parseQuery(cfg.Query)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pf, err := loadPolicy(cfg.FS, false)
	if err != nil {
		return nil, err
	}
	return newEngine(ctx, cfg, ref, pf)
}

// newEngine compiles and prepares the loaded policy; cfg has its defaults.
func newEngine(ctx context.Context, cfg Config, ref ast.Ref, pf *policyFiles) (*Engine, error) {
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(pf.modules); compiler.Failed() {
		return nil, fmt.Errorf("%w: %w", ErrCompile, compiler.Errors)
	}
	if len(compiler.GetRules(ref)) == 0 {
		return nil, fmt.Errorf("%w: query %s matches no rule of the policy (check the package and rule names)", ErrCompile, cfg.Query)
	}
	proj := analyseInputReads(compiler.Modules)
	pq, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(compiler),
		// Data converted to OPA values once, here, not on every read of data
		// (BenchmarkDecideUncached: about half the demo's evaluation time).
		rego.Store(inmem.NewFromObjectWithOpts(pf.data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
		// Hand back OPA's own value: decodeDecision reads it directly, without
		// the map[string]any detour of the default JSON conversion.
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	e := &Engine{query: cfg.Query, pq: pq, revision: pf.revision, clock: cfg.Clock, proj: proj}
	if cfg.MemoEntries > 0 {
		e.memo, e.memoCap = newMemo(cfg.MemoEntries), cfg.MemoEntries
	}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		Revision: e.revision, MemoCapacity: e.memoCap,
		Evaluations: e.evals.Load(), EvalErrors: e.evalErrs.Load(), EvalNanos: e.evalNanos.Load(),
		KeyFields: e.proj.fields(),
	}
	if e.memo != nil {
		s.MemoEntries = e.memo.len()
		s.Hits, s.Misses, s.Evictions = e.memo.hits.Load(), e.memo.misses.Load(), e.memo.evictions.Load()
	}
	return s
}

// Revision is the content hash of the policy files the engine was built from,
// "sha256:" and 16 hex digits; the same files give the same revision on any
// machine. Test files do not count.
func (e *Engine) Revision() string { return e.revision }

// Query is the rule the engine evaluates.
func (e *Engine) Query() string { return e.query }

// Decide evaluates the policy on in and returns the typed decision, stamped with
// the revision, the time it took, the canonical input and its hash. Errors wrap
// ErrUndefined, ErrDecisionShape or ErrEval; the caller then applies the trial's
// fail mode.
//
// Decide is a pure function of (revision, input fields the policy reads), so it
// memoises: a decision already made for the same projected input comes from the
// memo (MemoHit), never changed. Errors are never memoised.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	start := e.clock.Now()
	normalizeInput(&in)
	raw := appendInput(make([]byte, 0, canonicalSizeHint(&in)), &in, fAll, nil)
	sum := sha256.Sum256(raw)
	var key memoKey
	if e.memo != nil {
		key = e.proj.key(&in, sum)
		if d, ok := e.memo.get(&key); ok {
			d.Revision, d.Input, d.InputHash, d.MemoHit = e.revision, raw, hashString(sum), true
			d.EvalMicros = e.clock.Now().Sub(start).Microseconds()
			return d, nil
		}
	}
	d, err := e.evaluate(ctx, inputValue(&in))
	end := e.clock.Now()
	e.evals.Add(1)
	if ns := end.Sub(start); ns > 0 {
		e.evalNanos.Add(uint64(ns))
	}
	if err != nil {
		e.evalErrs.Add(1)
		return Decision{}, err
	}
	if e.memo != nil {
		e.memo.put(&key, d)
	}
	d.Revision, d.Input, d.InputHash = e.revision, raw, hashString(sum)
	d.EvalMicros = end.Sub(start).Microseconds()
	return d, nil
}

// evaluate runs the prepared query on an already converted input document.
func (e *Engine) evaluate(ctx context.Context, input ast.Value) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	// Cancellation via context.AfterFunc instead of rego's default goroutine per
	// evaluation (measured in BenchmarkDecide).
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	rs, err := e.pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalExternalCancel(cancel))
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Decision{}, fmt.Errorf("%w: %w: %w", ErrEval, cerr, err)
		}
		return Decision{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	switch len(rs) {
	case 0:
		return Decision{}, fmt.Errorf("%w: %s has no value for this input", ErrUndefined, e.query)
	case 1:
	default:
		return Decision{}, shapeError("decision", "%s produced %d results, want one", e.query, len(rs))
	}
	if len(rs[0].Expressions) != 1 {
		return Decision{}, shapeError("decision", "%s produced %d expressions, want one", e.query, len(rs[0].Expressions))
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return Decision{}, shapeError("decision", "unexpected result type %T", rs[0].Expressions[0].Value)
	}
	return decodeDecision(v)
}
