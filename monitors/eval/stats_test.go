package eval

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stagegate/stagegate/monitors/offline"
)

func TestWilson(t *testing.T) {
	tests := []struct {
		k, n   int
		lo, hi string
	}{
		{0, 0, "0.000", "1.000"},
		{10, 10, "0.722", "1.000"},
		{50, 100, "0.404", "0.596"},
		{0, 20, "0.000", "0.161"},
	}
	for _, tt := range tests {
		lo, hi := Wilson(tt.k, tt.n)
		if fmt.Sprintf("%.3f", lo) != tt.lo || fmt.Sprintf("%.3f", hi) != tt.hi {
			t.Errorf("Wilson(%d,%d) = [%.3f, %.3f], want [%s, %s]", tt.k, tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestConfusionAndF1Interval(t *testing.T) {
	var c Confusion
	for range 80 {
		c.Add(true, true)
	}
	for range 20 {
		c.Add(true, false)
	}
	for range 10 {
		c.Add(false, true)
	}
	for range 90 {
		c.Add(false, false)
	}
	p, _ := c.Precision()
	r, _ := c.Recall()
	f, _ := c.F1()
	fpr, _ := c.FPR()
	if fmt.Sprintf("%.3f %.3f %.3f %.3f", p, r, f, fpr) != "0.889 0.800 0.842 0.100" {
		t.Errorf("P R F1 FPR = %.3f %.3f %.3f %.3f", p, r, f, fpr)
	}
	lo, hi := F1Interval(c)
	if !(lo < f && f < hi) || hi-lo > 0.2 {
		t.Errorf("F1 interval [%.3f, %.3f] around %.3f", lo, hi, f)
	}
	if lo2, hi2 := F1Interval(c); lo2 != lo || hi2 != hi {
		t.Error("F1 interval not reproducible")
	}
}

func TestSplitIsStableAndBalanced(t *testing.T) {
	tune := 0
	for i := range 1000 {
		if Split(fmt.Sprintf("row-%d", i)) == SplitTune {
			tune++
		}
	}
	if tune < 450 || tune > 550 {
		t.Errorf("tune half has %d of 1000", tune)
	}
	if Split("surge-tox-0001") != Split("surge-tox-0001") {
		t.Error("split not deterministic")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if Percentile(xs, 50) != 3 || Percentile(xs, 100) != 5 || Percentile(nil, 50) != 0 {
		t.Error("percentile")
	}
}

func TestEntities(t *testing.T) {
	sl, _ := json.Marshal(map[string]any{"spans": []map[string]any{
		{"entity_type": "PERSON", "start": 0, "end": 4},
		{"entity_type": "EMAIL_ADDRESS", "start": 10, "end": 20},
		{"entity_type": "GPE", "start": 30, "end": 35},
	}})
	rows := []Row{{SourceLabel: sl, Findings: []offline.Finding{{Category: "pii", Spans: []offline.Span{
		{Field: "prompt", Start: 0, End: 4, Kind: "person"},
		{Field: "prompt", Start: 12, End: 14, Kind: "phone"},
	}}}}}
	e := Entities(rows, "")
	if e["person"].GoldFound != 1 || e["email"].Gold != 1 || e["email"].GoldFound != 0 || e["phone"].Pred != 1 || e["phone"].PredRight != 0 {
		t.Errorf("entities %+v %+v %+v", e["person"], e["email"], e["phone"])
	}
}
