package lexicon

import (
	"strings"
	"testing"
)

func TestSettingsResolve(t *testing.T) {
	got, err := Settings{}.Resolve("d", 0.5, 20, 1000)
	if err != nil || got.Threshold != 0.5 || got.MaxSpans != 20 {
		t.Fatalf("defaults: %+v %v", got, err)
	}
	got, err = Settings{Threshold: 0.7, MaxSpans: 3}.Resolve("d", 0.5, 20, 1000)
	if err != nil || got.Threshold != 0.7 || got.MaxSpans != 3 {
		t.Fatalf("explicit: %+v %v", got, err)
	}
	_, err = Settings{Threshold: 1.5, MaxSpans: 5000}.Resolve("toxicity", 0.5, 20, 1000)
	if err == nil || !strings.Contains(err.Error(), "toxicity: threshold 1.5") || !strings.Contains(err.Error(), "max spans 5000") {
		t.Fatalf("every problem named: %v", err)
	}
}
