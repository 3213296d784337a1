package policies

import (
	"context"
	"strings"
	"testing"
)

func TestLibraryIsMountedOnlyWhereUsed(t *testing.T) {
	const data = `{"rules": {"purpose": {"denied_topics": ["weapons"]}}}`
	weapons := realisticInput()
	weapons.Signals.Topics = []string{"weapons"}
	for name, files := range map[string]map[string]string{
		"import":        {"p.rego": "package stagegate\n\nimport data.stagegate.lib\n\ndecision := lib.decision\n", "data.json": data},
		"full ref":      {"p.rego": "package stagegate\n\ndecision := data.stagegate.lib.decision\n", "data.json": data},
		"import parent": {"p.rego": "package x\n\nimport data.stagegate\n\ndecision := stagegate.lib.decision\n", "data.json": data},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), Config{FS: policyFS(files), Query: map[bool]string{true: "data.x.decision", false: ""}[name == "import parent"]})
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Decide(context.Background(), weapons)
			if err != nil || d.Allow || d.Reasons[0].Code != "topic_denied" {
				t.Errorf("decision %+v, %v", d, err)
			}
		})
	}
	// A root with its own stagegate.lib gets no mount (it pins its own copy).
	own := mustEngine(t, map[string]string{
		"p.rego":   "package stagegate\n\nimport data.stagegate.lib\n\ndecision := lib.decision\n",
		"lib.rego": "package stagegate.lib\n\ndecision := {\"allow\": true, \"obligations\": {\"notice\": \"mine\"}}\n",
	})
	if d, err := own.Decide(context.Background(), weapons); err != nil || d.Obligations.Notice != "mine" {
		t.Errorf("own library: %+v, %v", d, err)
	}
	// The mounted library counts toward the revision; an unrelated root does not mount it.
	pf, err := loadPolicy(policyFS(map[string]string{"p.rego": "package stagegate\n\nimport data.stagegate.lib\n\ndecision := lib.decision\n"}), false)
	if err != nil {
		t.Fatal(err)
	}
	mounted := 0
	for p := range pf.modules {
		if strings.HasPrefix(p, LibraryMount) {
			mounted++
		}
	}
	if mounted < 9 {
		t.Errorf("%d library modules mounted", mounted)
	}
	pf, err = loadPolicy(demoFS(t), true)
	if err != nil {
		t.Fatal(err)
	}
	for p := range pf.modules {
		if strings.HasPrefix(p, LibraryMount) {
			t.Errorf("the demo policy got %s mounted", p)
		}
	}
}
