package suite_test

import (
	"strings"
	"testing"

	"github.com/stagegate/stagegate/monitors/judge"
	"github.com/stagegate/stagegate/monitors/slo"
	"github.com/stagegate/stagegate/monitors/suite"
)

func TestDefault(t *testing.T) {
	dets, err := suite.Default(suite.Config{}, suite.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dets {
		names = append(names, d.Name())
		if d.Version() == "" {
			t.Errorf("%s has no version", d.Name())
		}
	}
	if strings.Join(names, ",") != strings.Join(suite.Names(), ",") {
		t.Errorf("default detectors %v, want %v", names, suite.Names())
	}

	dets, err = suite.Default(suite.Config{
		Disable:    []string{"toxicity"},
		Thresholds: map[string]float64{"pii": 0.5},
		SLO:        &slo.Config{Limits: slo.Limits{ErrorRate: 0.1}},
		Judge:      &judge.Config{BaseURL: "http://127.0.0.1:1/v1", Model: "judge"},
	}, suite.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, d := range dets {
		names = append(names, d.Name())
	}
	if got := strings.Join(names, ","); got != "pii,injection,jailbreak,unsafe_advice,slo,llm_judge" {
		t.Errorf("configured detectors %s", got)
	}
}

func TestValidate(t *testing.T) {
	err := suite.Config{
		Disable:    []string{"nope"},
		Thresholds: map[string]float64{"toxicity": 2, "other": 0.5},
		SLO:        &slo.Config{},
		Judge:      &judge.Config{},
	}.Validate()
	for _, want := range []string{`disable: unknown detector "nope"`, "toxicity = 2", `unknown detector "other"`, "slo: no limits", "llm_judge: model"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
