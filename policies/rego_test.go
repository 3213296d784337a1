package policies

import (
	"context"
	"io/fs"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRegoPolicies runs the *_test.rego tests of every policy root under rego/ in
// the embedded tree (what the binary ships), each root loaded exactly as the
// engine loads it, with OPA's test runner. Any failing or erroring Rego test
// fails this test, and a root without tests does too.
func TestRegoPolicies(t *testing.T) {
	roots, err := fs.ReadDir(Builtin(), "rego")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, root := range roots {
		if !root.IsDir() {
			continue
		}
		t.Run(root.Name(), func(t *testing.T) {
			sub, err := fs.Sub(Builtin(), "rego/"+root.Name())
			if err != nil {
				t.Fatal(err)
			}
			pf, err := loadPolicy(sub, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(pf.tests) == 0 {
				t.Fatal("policy root has no *_test.rego")
			}
			modules := map[string]*ast.Module{}
			for p, m := range pf.modules {
				modules[p] = m
			}
			for p, m := range pf.tests {
				modules[p] = m
			}
			ch, err := tester.NewRunner().
				SetDefaultRegoVersion(ast.RegoV1).
				SetStore(inmem.NewFromObjectWithOpts(pf.data, inmem.OptRoundTripOnWrite(false))).
				SetModules(modules).
				RunTests(context.Background(), nil)
			if err != nil {
				t.Fatalf("running tests: %v", err)
			}
			n := 0
			for r := range ch {
				n++
				if !r.Pass() {
					t.Errorf("%s", r)
				}
			}
			if n == 0 {
				t.Error("no test_ rules ran")
			}
			t.Logf("%d Rego tests", n)
			ran += n
		})
	}
	if ran == 0 {
		t.Error("no Rego tests ran at all")
	}
}

// TestRegoRunnerCatchesFailures makes sure the harness above would notice a
// failing Rego test.
func TestRegoRunnerCatchesFailures(t *testing.T) {
	pf, err := loadPolicy(policyFS(map[string]string{
		"p.rego":      "package stagegate\n\ndecision := {\"allow\": false}\n",
		"p_test.rego": "package stagegate_test\n\nimport data.stagegate\n\ntest_allows if stagegate.decision.allow\n",
	}), true)
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{"p.rego": pf.modules["p.rego"], "p_test.rego": pf.tests["p_test.rego"]}
	ch, err := tester.NewRunner().SetDefaultRegoVersion(ast.RegoV1).SetModules(modules).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for r := range ch {
		if !r.Pass() {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failing tests reported, want 1", failed)
	}
}
