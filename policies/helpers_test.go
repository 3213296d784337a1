package policies

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func demoFS(tb testing.TB) fs.FS {
	tb.Helper()
	sub, err := fs.Sub(Builtin(), DemoPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}

// jsonRoundTripValue converts in the way rego.EvalInput does: JSON and back,
// then ast.InterfaceToValue.
func jsonRoundTripValue(in Input) (ast.Value, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(doc)
}
