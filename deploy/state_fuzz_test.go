package deploy

import (
	"testing"
)

// FuzzDecodeState: whatever a ROLLOUTS bucket entry holds, decoding never
// panics, and a state it accepts is well formed and encodes and decodes again
// to the same rollout.
func FuzzDecodeState(f *testing.F) {
	spec, err := ParseSpec("seed.yaml", []byte(scriptedPlan))
	if err != nil {
		f.Fatal(err)
	}
	good, err := encodeState(&State{Spec: spec, Status: StatusProgressing, Step: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schema":"stagegate.rollout.v1","status":"paused","step":-1}`))
	f.Add([]byte(`{"schema":"stagegate.rollout.v0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b, 7)
		if err != nil {
			return
		}
		if s.Revision != 7 || s.Step < 0 || s.Step > len(s.Spec.Steps) || s.Spec.Validate() != nil {
			t.Fatalf("accepted a malformed state: %+v", s)
		}
		again, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := DecodeState(again, 7)
		if err != nil || s2.Trial() != s.Trial() || s2.Step != s.Step || s2.Status != s.Status {
			t.Fatalf("round trip: %+v → %+v (%v)", s, s2, err)
		}
	})
}
