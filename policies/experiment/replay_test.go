package experiment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/replay"
)

// TestReplayArmOnTheOtherArmsTraffic: the recorded traffic of one arm is
// replayed under the other arm's policy, and under its own (which must
// reproduce every recorded decision).
func TestReplayArmOnTheOtherArmsTraffic(t *testing.T) {
	ctx := context.Background()
	d, base := demoDecider(t)
	src := readExample(t)
	def := mustParse(t, string(src))
	<-d.Apply(ctx, def.Name, runningState(t, src))
	variantRev := d.Arms()["notice"]

	// Record what the gateway would: every decision of 60 users, some of
	// them asking about a denied topic.
	var recorded []replay.Record
	perArm := map[string]int{}
	for i := range 60 {
		in := input(fmt.Sprintf("u_%06d", i), "pilot")
		if i%7 == 0 {
			in.Signals.Topics = []string{"weapons"}
		}
		dec, err := d.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		perArm[dec.Arm]++
		ev := &events.Interaction{ID: fmt.Sprintf("int_%04d", i), StartedAt: t0.Add(time.Duration(i) * time.Second),
			Decision: events.Decision{Allow: dec.Allow, Route: dec.Route, PolicyRevision: dec.Revision, Input: dec.Input, InputHash: dec.InputHash,
				Experiment: dec.Experiment, Arm: dec.Arm, VariantRevision: dec.VariantRevision,
				Obligations: events.Obligations{RedactPIIInStorage: dec.Obligations.RedactPIIInStorage, MaxTokens: dec.Obligations.MaxTokens, Notice: dec.Obligations.Notice}}}
		for _, r := range dec.Reasons {
			ev.Decision.Reasons = append(ev.Decision.Reasons, events.Reason{Code: r.Code, Message: r.Message})
		}
		recorded = append(recorded, replay.FromInteraction(ev))
	}
	if perArm["control"] == 0 || perArm["notice"] == 0 {
		t.Fatalf("arms %v", perArm)
	}
	all := func(ctx context.Context, yield func(replay.Record) error) error {
		for _, r := range recorded {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
	tp, _ := demoPolicy(t)
	variant, err := BuildVariant(ctx, tp, def.Arm("notice").Variant, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		arm, rev  string
		candidate policies.Decider
		changed   bool
	}{
		{"notice policy on control traffic", "control", base.Engine().Revision(), variant, true},
		{"control policy on notice traffic", "notice", variantRev, base, true},
		{"notice policy on its own traffic", "notice", variantRev, variant, false},
		{"control policy on its own traffic", "control", base.Engine().Revision(), base, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := replay.Run(ctx, tc.candidate, ArmTraffic(all, def, tc.arm, tc.rev), replay.Config{Workers: 2}, replay.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			n := perArm[tc.arm]
			if rep.Read != n || rep.Replayed != n || rep.Errors != 0 || rep.InputMismatch != 0 {
				t.Fatalf("read %d replayed %d errors %d, want %d of arm %s", rep.Read, rep.Replayed, rep.Errors, n, tc.arm)
			}
			if !tc.changed {
				if rep.Unchanged != n {
					t.Errorf("own policy on own traffic: %d of %d unchanged: %+v", rep.Unchanged, n, rep.Changes)
				}
				return
			}
			// Every decision gains or loses the notice (the demo policy
			// states it on denials too); nothing else changes: denied
			// requests stay denied, allowed ones allowed.
			if len(rep.Changes) != 1 || rep.Changes[0].Kind != replay.ObligationsChanged || rep.Changes[0].Count != n ||
				rep.Changes[0].Detail["notice"] != n || rep.Unchanged != 0 {
				t.Errorf("changes %+v, unchanged %d (arm %d)", rep.Changes, rep.Unchanged, n)
			}
		})
	}
}
