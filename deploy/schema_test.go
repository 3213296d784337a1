package deploy

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

// matchRolloutSchema validates doc (JSON-shaped) against the rollout schema's
// root (def "") or one of its $defs, with OPA's json.match_schema, a real JSON
// Schema implementation, so the schema and the Go types cannot drift apart.
func matchRolloutSchema(t *testing.T, def string, doc any) []string {
	t.Helper()
	raw, err := Schemas.ReadFile(SchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("%s is not JSON: %v", SchemaFile, err)
	}
	if def != "" {
		schema = map[string]any{"$defs": schema["$defs"], "$ref": "#/$defs/" + def}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d any
	_ = json.Unmarshal(b, &d)
	rs, err := rego.New(rego.Query("x := json.match_schema(input.doc, input.schema)"),
		rego.Input(map[string]any{"doc": d, "schema": schema})).Eval(context.Background())
	if err != nil || len(rs) == 0 {
		t.Fatalf("match_schema: %v", err)
	}
	res := rs[0].Bindings["x"].([]any)
	if res[0].(bool) {
		return nil
	}
	var msgs []string
	for _, e := range res[1].([]any) {
		m, _ := json.Marshal(e)
		msgs = append(msgs, string(m))
	}
	if len(msgs) == 0 {
		msgs = []string{"invalid"}
	}
	return msgs
}

// yamlDoc reads a YAML plan file as the generic document an editor validates.
func yamlDoc(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestPlansMatchTheSchema(t *testing.T) {
	for _, path := range []string{"testdata/rollout.yaml", "../examples/rollout.yaml"} {
		t.Run(path, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := ParseSpec(path, raw)
			if err != nil {
				t.Fatal(err)
			}
			// As written (YAML, "general:" with no value) and as stored (JSON of Spec).
			if errs := matchRolloutSchema(t, "", yamlDoc(t, path)); errs != nil {
				t.Fatalf("the YAML plan does not match: %v", errs)
			}
			if errs := matchRolloutSchema(t, "plan", spec); errs != nil {
				t.Fatalf("the parsed plan does not match: %v", errs)
			}
		})
	}
	// The schema rejects what ParseSpec rejects.
	for name, doc := range map[string]string{
		"unknown field":  `{"trial":"t","candidate":"c","baseline":"b","stepz":[],"steps":[{"general":null}]}`,
		"two kinds":      `{"trial":"t","candidate":"c","baseline":"b","steps":[{"canary":{"weight":10},"general":{}}]}`,
		"no steps":       `{"trial":"t","candidate":"c","baseline":"b","steps":[]}`,
		"weight above":   `{"trial":"t","candidate":"c","baseline":"b","steps":[{"canary":{"weight":101}}]}`,
		"bad duration":   `{"trial":"t","candidate":"c","baseline":"b","steps":[{"pause":{"duration":"soon"}}]}`,
		"rate of 1":      `{"trial":"t","candidate":"c","baseline":"b","thresholds":[{"category":"pii","max_rate":1}],"steps":[{"general":null}]}`,
		"trial with dot": `{"trial":"a.b","candidate":"c","baseline":"b","steps":[{"general":null}]}`,
	} {
		var d any
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		if errs := matchRolloutSchema(t, "", d); errs == nil {
			t.Errorf("%s: the schema accepted %s", name, doc)
		}
	}
}

func TestStatesMatchTheSchema(t *testing.T) {
	clk := clock.NewFake(t0)
	e := newEnv(t, clk)
	c := e.controller(t, e.js, Config{})
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec("rollout.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	spec.Trial = "demo"
	if _, err := c.Apply(ctx, spec, "acme-ops", "launch"); err != nil {
		t.Fatal(err)
	}
	e.traffic(t, "demo", spec.Candidate, 10)
	e.incident(t, "demo", spec.Candidate, "pii", events.SeverityHigh)
	clk.Advance(2 * time.Hour)
	states := map[string]*State{}
	if states["waiting at a gate"], err = c.Reconcile(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if states["live status"], err = c.Status(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if states["paused"], err = c.Pause(ctx, "demo", "ana", "holiday"); err != nil {
		t.Fatal(err)
	}
	if states["aborted"], err = c.Abort(ctx, "demo", "ana", "enough"); err != nil {
		t.Fatal(err)
	}
	if states["live status"].Gate == nil || len(states["live status"].Gate.Rates) == 0 || states["aborted"].Status != StatusAborted {
		t.Fatalf("states do not cover a verdict and an abort: %+v", states)
	}
	for name, s := range states {
		b, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		_ = json.Unmarshal(b, &doc)
		if errs := matchRolloutSchema(t, "state", doc); errs != nil {
			t.Errorf("%s: the stored state does not match: %v\n%s", name, errs, b)
		}
	}
	bad := *states["aborted"]
	bad.Status = "exploded"
	if errs := matchRolloutSchema(t, "state", &bad); errs == nil {
		t.Fatal("the schema accepted a state with status exploded")
	}
}
