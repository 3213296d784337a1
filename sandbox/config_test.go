package sandbox

import (
	"strings"
	"testing"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../examples/stagegate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatalf("examples/stagegate.yaml: %v", err)
	}
	if len(cfg.Trials) != 1 || cfg.Trials[0].CandidatePercent != 10 || cfg.Admin.TokenEnv == "" {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestDemoConfigIsValid(t *testing.T) {
	if err := Demo().WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseRejectsUnknownFieldsWithLine(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("gateway:\n  addr: 127.0.0.1:1\n  colour: blue\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("got %v", err)
	}
	_, err = Parse("bad.yaml", []byte("gateway:\n  max_body_bytes: lots\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Gateway:    GatewayConfig{Addr: "nope"},
		Simulators: []SimulatorConfig{{Name: "a.b"}},
		Models:     []ModelConfig{{Name: "m", BaseURL: "ftp://x"}},
		Trials:     []TrialConfig{{ID: "t", Candidate: "missing", Baseline: "m", CandidatePercent: 120, Stage: "beta", FailMode: "sideways"}},
		Keys:       []KeyConfig{{Name: "k", SHA256: "abc", Trial: "other"}},
	}.WithDefaults()
	cfg.Trials[0].Stage, cfg.Trials[0].FailMode = "beta", "sideways"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"gateway.addr", "admin: set token", "simulators[0].name", "base_url", "candidate: model \"missing\"",
		"candidate_percent", "stage \"beta\"", "fail_mode", "policy: required", "sha256", "no such trial", "tenant: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q:\n%v", want, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("gateway:\n  addr: 127.0.0.1:8080\ntrials:\n  - id: t\n    candidate: a\n"))
	f.Add([]byte("keys: [{name: k, sha256: x}]"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		_ = cfg.WithDefaults().Validate() // must not panic
	})
}
