package policies

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue must build the very document OPA would build from the JSON of the
// input, so a policy behaves the same live and on a replay of logged JSON.
func TestInputValueMatchesJSON(t *testing.T) {
	full := realisticInput()
	large := full
	large.Request.MaxTokens = 100000 // beyond OPA's interned integers
	large.Request.EstimatedPromptTokens = -1
	large.Signals.InjectionScore = 1
	large.Caller.Attributes = map[string]string{"z": "1", "a": "2", "m": "", "": "empty key"}
	for name, in := range map[string]Input{"realistic": full, "large numbers": large} {
		t.Run(name, func(t *testing.T) {
			want, err := jsonRoundTripValue(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := inputValue(&in); got.Compare(want) != 0 {
				t.Errorf("inputValue =\n%v\nJSON round trip =\n%v", got, want)
			}
		})
	}
}

// Nil lists and maps become empty ones, so a policy never meets null.
func TestInputValueNeverNull(t *testing.T) {
	v := inputValue(&Input{})
	for _, path := range []string{"request.roles", "signals.pii_types", "signals.topics"} {
		got, err := v.Find(ast.MustParseRef("x." + path)[1:])
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if arr, ok := got.(*ast.Array); !ok || arr.Len() != 0 {
			t.Errorf("%s = %v, want []", path, got)
		}
	}
	got, err := v.Find(ast.MustParseRef("x.caller.attributes")[1:])
	if obj, ok := got.(ast.Object); err != nil || !ok || obj.Len() != 0 {
		t.Errorf("caller.attributes = %v, %v; want {}", got, err)
	}
}

func TestInputConversionAllocations(t *testing.T) {
	in := realisticInput()
	ast := testing.AllocsPerRun(50, func() { _ = inputValue(&in) })
	viaJSON := testing.AllocsPerRun(50, func() {
		if _, err := jsonRoundTripValue(in); err != nil {
			t.Fatal(err)
		}
	})
	if ast >= viaJSON {
		t.Errorf("direct conversion allocates %v times, the JSON round trip %v", ast, viaJSON)
	}
}
