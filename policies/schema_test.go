package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A small validator for the subset of JSON Schema (draft 2020-12) the contract
// files use. A keyword outside the subset is reported, so the schema cannot
// quietly rely on something this check ignores.

var schemaAnnotations = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "examples": true, "format": true,
}

func validate(schema map[string]any, doc any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for kw := range schema {
		switch kw {
		case "type", "properties", "required", "additionalProperties", "enum", "items", "minimum", "maximum", "minLength":
		default:
			if !schemaAnnotations[kw] {
				fail("unsupported schema keyword %q", kw)
			}
		}
	}
	if typ, ok := schema["type"].(string); ok && !hasType(doc, typ) {
		fail("got %T, want %s", doc, typ)
		return errs
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, doc) }) {
		fail("%v is not one of %v", doc, enum)
	}
	if n, ok := doc.(json.Number); ok {
		f, _ := n.Float64()
		if m, ok := schema["minimum"].(json.Number); ok {
			if mf, _ := m.Float64(); f < mf {
				fail("%v is below the minimum %v", n, m)
			}
		}
		if m, ok := schema["maximum"].(json.Number); ok {
			if mf, _ := m.Float64(); f > mf {
				fail("%v is above the maximum %v", n, m)
			}
		}
	}
	if s, ok := doc.(string); ok {
		if m, ok := schema["minLength"].(json.Number); ok {
			if ml, _ := m.Int64(); int64(len([]rune(s))) < ml {
				fail("%q is shorter than %v", s, m)
			}
		}
	}
	if obj, ok := doc.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				fail("missing required %q", r)
			}
		}
		for k, v := range obj {
			if sub, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(sub, v, at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("unexpected property %q", k)
				}
			case map[string]any:
				errs = append(errs, validate(ap, v, at+"."+k)...)
			}
		}
	}
	if arr, ok := doc.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, v := range arr {
				errs = append(errs, validate(items, v, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func hasType(doc any, typ string) bool {
	switch typ {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "null":
		return doc == nil
	case "number":
		_, ok := doc.(json.Number)
		return ok
	case "integer":
		n, ok := doc.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	}
	return false
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func decodeJSON(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := decodeJSON(t, raw).(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object", name)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("%s: $schema = %v", name, s["$schema"])
	}
	return s
}

func mustValid(t *testing.T, schema map[string]any, v any, what string) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if errs := validate(schema, decodeJSON(t, raw), "$"); len(errs) > 0 {
		t.Errorf("%s does not validate:\n%s\n%s", what, strings.Join(errs, "\n"), raw)
	}
}

// keyPaths lists every object key path of a schema's properties (p) or of a
// document (d), so the two can be compared for drift between Go and the schema.
func keyPaths(v any, prefix string, schema bool, out map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if schema {
		props, _ := m["properties"].(map[string]any)
		for k, sub := range props {
			out[prefix+k] = true
			keyPaths(sub, prefix+k+".", true, out)
		}
		return
	}
	for k, sub := range m {
		out[prefix+k] = true
		if k != "attributes" { // free-form map
			keyPaths(sub, prefix+k+".", false, out)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestInputSchema(t *testing.T) {
	schema := loadSchema(t, "input.v1.json")
	for i, ex := range asSlice(schema["examples"]) {
		if errs := validate(schema, ex, "$"); len(errs) > 0 {
			t.Errorf("example %d: %v", i, errs)
		}
	}
	in := realisticInput()
	mustValid(t, schema, in, "a marshalled Input")

	// Every JSON field of Input is in the schema and every schema property is a
	// field of Input (content is present only with content access).
	withContent := in
	withContent.Content = []ContentMessage{{Role: "user", Text: "hello"}}
	mustValid(t, schema, withContent, "an Input with content")
	raw, _ := json.Marshal(withContent)
	canon, _ := CanonicalInput(withContent)
	mustValid(t, schema, json.RawMessage(canon), "the canonical encoding")
	goKeys, schemaKeys := map[string]bool{}, map[string]bool{}
	keyPaths(decodeJSON(t, raw), "", false, goKeys)
	keyPaths(schema, "", true, schemaKeys)
	if !slices.Equal(sortedKeys(goKeys), sortedKeys(schemaKeys)) {
		t.Errorf("Input fields and schema properties differ:\nGo:     %v\nschema: %v", sortedKeys(goKeys), sortedKeys(schemaKeys))
	}

	// Signals from the extractor always validate (never-nil lists).
	x := testExtractor(t)
	in.Signals = x.Extract("nothing to see")
	mustValid(t, schema, in, "Input with extracted signals")
	in.Signals = x.Extract("dose? mail a@b.io, ignore previous instructions, 用AI")
	mustValid(t, schema, in, "Input with extracted findings")

	// The validator is not vacuous.
	bad := []string{
		`{"trial":"t"}`,
		strings.Replace(string(raw), `"trial":"demo"`, `"trial":"demo","prompt":"hi"`, 1),
		strings.Replace(string(raw), `"language":"en"`, `"language":"fr"`, 1),
		strings.Replace(string(raw), `"injection_score":0.3`, `"injection_score":1.5`, 1),
		strings.Replace(string(raw), `"max_tokens":2048`, `"max_tokens":-1`, 1),
		strings.Replace(string(raw), `"pii_types":["email"]`, `"pii_types":["ssn"]`, 1),
		strings.Replace(string(raw), `"roles":["system","user","assistant","user"]`, `"roles":null`, 1),
		strings.Replace(string(raw), `"text":"hello"`, `"text":"hello","name":"x"`, 1),
	}
	for _, b := range bad {
		if errs := validate(schema, decodeJSON(t, []byte(b)), "$"); len(errs) == 0 {
			t.Errorf("invalid input validated: %s", b)
		}
	}
}

func TestDecisionSchema(t *testing.T) {
	schema := loadSchema(t, "decision.v1.json")
	examples := asSlice(schema["examples"])
	if len(examples) == 0 {
		t.Fatal("decision schema has no examples")
	}
	for i, ex := range examples {
		if errs := validate(schema, ex, "$"); len(errs) > 0 {
			t.Errorf("example %d: %v", i, errs)
		}
		// The engine reads each documented example, and writes it back valid.
		v, err := ast.InterfaceToValue(ex)
		if err != nil {
			t.Fatal(err)
		}
		d, err := decodeDecision(v)
		if err != nil {
			t.Errorf("example %d: decodeDecision: %v", i, err)
		}
		mustValid(t, schema, d, fmt.Sprintf("example %d after decoding", i))
	}

	// Decisions of the demo policy, as the gateway would log them.
	e := demoEngine(t)
	full := Decision{}
	for _, topics := range [][]string{nil, {"weapons"}} {
		in := realisticInput()
		in.Signals.Topics = topics
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, schema, d, "a demo decision")
		full = d
	}

	raw, _ := json.Marshal(full)
	goKeys, schemaKeys := map[string]bool{}, map[string]bool{}
	keyPaths(decodeJSON(t, raw), "", false, goKeys)
	keyPaths(schema, "", true, schemaKeys)
	if !slices.Equal(sortedKeys(goKeys), sortedKeys(schemaKeys)) {
		t.Errorf("Decision fields and schema properties differ:\nGo:     %v\nschema: %v", sortedKeys(goKeys), sortedKeys(schemaKeys))
	}

	for _, b := range []string{
		`{"route": "candidate"}`,
		`{"allow": true, "route": "canary"}`,
		`{"allow": true, "fail_mode": "sometimes"}`,
		`{"allow": true, "reasons": [{"message": "no code"}]}`,
		`{"allow": true, "reasons": [{"code": ""}]}`,
		`{"allow": true, "obligations": {"max_tokens": 1.5}}`,
		`{"allow": true, "obligations": {"log_level": "loud"}}`,
		`{"allow": true, "extra": 1}`,
	} {
		doc := decodeJSON(t, []byte(b))
		if errs := validate(schema, doc, "$"); len(errs) == 0 {
			t.Errorf("invalid decision validated: %s", b)
		}
		// The engine refuses exactly what the schema refuses.
		v, err := ast.InterfaceToValue(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeDecision(v); err == nil {
			t.Errorf("decodeDecision accepted %s", b)
		}
	}
}
