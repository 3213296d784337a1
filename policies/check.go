package policies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// CheckConfig says what Check runs on a policy root.
type CheckConfig struct {
	// Config is the engine configuration of the root (FS required).
	Config
	// Corpus are cases from outside the root, checked with the root's own
	// *.corpus.yaml files.
	Corpus []CorpusCase
	// Run, when not empty, is a regular expression: only Rego tests and corpus
	// cases whose name it matches run.
	Run string
}

// CheckReport is what Check found.
type CheckReport struct {
	// Revision of the checked policy.
	Revision string `json:"revision"`
	// Tests are the root's Rego unit tests (*_test.rego, test_* rules).
	Tests []TestResult `json:"tests"`
	// Cases are the decision corpus cases.
	Cases []CaseResult `json:"cases"`
}

// TestResult is one Rego unit test.
type TestResult struct {
	Name     string        `json:"name"` // package.rule
	Location string        `json:"location"`
	Pass     bool          `json:"pass"`
	Skipped  bool          `json:"skipped,omitempty"` // a todo_test_ rule
	Error    string        `json:"error,omitempty"`
	Output   string        `json:"output,omitempty"` // print() output of a failing test
	Duration time.Duration `json:"duration_ns"`
}

// CaseResult is one corpus case.
type CaseResult struct {
	Where    string   `json:"where"` // file:line (name)
	Pass     bool     `json:"pass"`
	Problems []string `json:"problems,omitempty"`
}

// Failures counts failing tests and cases.
func (r *CheckReport) Failures() int {
	n := 0
	for _, t := range r.Tests {
		if !t.Pass {
			n++
		}
	}
	for _, c := range r.Cases {
		if !c.Pass {
			n++
		}
	}
	return n
}

// Err is nil when everything passed, else an ErrCheck naming the first failures.
func (r *CheckReport) Err() error {
	n := r.Failures()
	if n == 0 {
		return nil
	}
	var first []string
	for _, t := range r.Tests {
		if !t.Pass && len(first) < 3 {
			first = append(first, "test "+t.Name)
		}
	}
	for _, c := range r.Cases {
		if !c.Pass && len(first) < 3 {
			first = append(first, "case "+c.Where+": "+strings.Join(c.Problems, "; "))
		}
	}
	return fmt.Errorf("%w: revision %s: %d of %d tests and cases failed: %s", ErrCheck, r.Revision, n, len(r.Tests)+len(r.Cases), strings.Join(first, "; "))
}

// WriteText writes the report for a person: failures in full, passes as one
// line each when verbose, and a summary line.
func (r *CheckReport) WriteText(w io.Writer, verbose bool) {
	passedTests, passedCases := 0, 0
	for _, t := range r.Tests {
		switch {
		case t.Pass:
			passedTests++
			if verbose && t.Skipped {
				fmt.Fprintf(w, "SKIP  test %s\n", t.Name)
			} else if verbose {
				fmt.Fprintf(w, "PASS  test %s (%s)\n", t.Name, t.Duration.Round(time.Microsecond))
			}
		default:
			fmt.Fprintf(w, "FAIL  test %s  %s\n", t.Name, t.Location)
			if t.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", t.Error)
			}
			for _, l := range strings.Split(strings.TrimRight(t.Output, "\n"), "\n") {
				if l != "" {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
		}
	}
	for _, c := range r.Cases {
		switch {
		case c.Pass:
			passedCases++
			if verbose {
				fmt.Fprintf(w, "PASS  case %s\n", c.Where)
			}
		default:
			fmt.Fprintf(w, "FAIL  case %s\n", c.Where)
			for _, p := range c.Problems {
				fmt.Fprintf(w, "      %s\n", p)
			}
		}
	}
	status := "ok"
	if r.Failures() > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: revision %s: Rego tests %d/%d passed, corpus cases %d/%d passed\n",
		status, r.Revision, passedTests, len(r.Tests), passedCases, len(r.Cases))
}

// Check compiles the policy root of cfg, runs its Rego unit tests with OPA's
// test runner, and decides every corpus case (the root's *.corpus.yaml files and
// cfg.Corpus), plus a built-in case: the empty input must get a well-formed
// decision. It returns the engine it built, so a caller that accepts the
// report can serve with exactly what was checked.
//
// The error is for a root that cannot be checked at all (ErrConfig, ErrCompile,
// ErrInput for a broken corpus file); failing tests and cases are in the report
// (CheckReport.Err).
func Check(ctx context.Context, cfg CheckConfig) (*Engine, *CheckReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	var run *regexp.Regexp
	if cfg.Run != "" {
		var err error
		if run, err = regexp.Compile(cfg.Run); err != nil {
			return nil, nil, fmt.Errorf("%w: Run: %w", ErrConfig, err)
		}
	}
	ec := cfg.Config.withDefaults()
	ref, err := parseQuery(ec.Query)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pf, err := loadPolicy(ec.FS, true)
	if err != nil {
		return nil, nil, err
	}
	files, err := corpusFiles(ec.FS)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: corpus files: %w", ErrInput, err)
	}
	own, err := LoadCorpus(ec.FS, files...)
	if err != nil {
		return nil, nil, err
	}
	eng, err := newEngine(ctx, ec, ref, pf)
	if err != nil {
		return nil, nil, err
	}
	rep := &CheckReport{Revision: eng.Revision(), Tests: []TestResult{}, Cases: []CaseResult{}}
	if len(pf.tests) > 0 {
		if err := runRegoTests(ctx, pf, run, rep); err != nil {
			return nil, nil, err
		}
	}
	if run == nil {
		// Rule of thumb 1 (README.md): the decision is defined, and well formed,
		// even for an empty input.
		res := CaseResult{Where: "(built-in) the decision is defined for an empty input", Pass: true}
		if _, err := eng.Decide(ctx, Input{}); err != nil {
			res.Pass, res.Problems = false, []string{"decision failed: " + err.Error()}
		}
		rep.Cases = append(rep.Cases, res)
	}
	for _, c := range append(own, cfg.Corpus...) {
		if run != nil && !run.MatchString(c.Name) {
			continue
		}
		res := CaseResult{Where: c.Where()}
		d, err := eng.Decide(ctx, c.Input)
		if err != nil {
			res.Problems = []string{"decision failed: " + err.Error()}
		} else {
			res.Problems = c.Mismatches(d)
		}
		res.Pass = len(res.Problems) == 0
		rep.Cases = append(rep.Cases, res)
	}
	return eng, rep, nil
}

// runRegoTests runs the test_ rules of pf's test modules, loaded exactly as the
// engine loads the policy.
func runRegoTests(ctx context.Context, pf *policyFiles, run *regexp.Regexp, rep *CheckReport) error {
	modules := make(map[string]*ast.Module, len(pf.modules)+len(pf.tests))
	for p, m := range pf.modules {
		modules[p] = m
	}
	for p, m := range pf.tests {
		modules[p] = m
	}
	r := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(inmem.NewFromObjectWithOpts(pf.data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))).
		SetModules(modules).
		CapturePrintOutput(true)
	if run != nil {
		r = r.Filter(run.String())
	}
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: running Rego tests: %w", ErrCompile, err)
	}
	for res := range ch {
		tr := TestResult{
			Name: strings.TrimPrefix(res.Package, "data.") + "." + res.Name,
			Pass: res.Pass() || res.Skip && res.Error == nil, Skipped: res.Skip, Duration: res.Duration,
		}
		if res.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", res.Location.File, res.Location.Row)
		}
		if res.Error != nil {
			tr.Error = res.Error.Error()
		}
		if !tr.Pass {
			tr.Output = string(res.Output)
		}
		rep.Tests = append(rep.Tests, tr)
	}
	if err := ctx.Err(); err != nil {
		return errors.Join(ErrEval, err)
	}
	return nil
}
