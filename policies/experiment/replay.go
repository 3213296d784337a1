package experiment

import (
	"context"

	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/replay"
)

// ArmTraffic narrows a replay source to the recorded decisions of one arm of
// an experiment: those whose input's caller the experiment's assignment puts
// in arm (the assignment is a pure function of the experiment name and the
// pseudonymous user id in the recorded input). When revision is not empty,
// only decisions recorded with that policy revision are kept (the arm's
// variant revision: traffic the arm was actually served, not traffic before
// or after the experiment ran).
//
// Replaying a variant's policy on the control arm's traffic (or the other
// way round) answers "what would this arm's rule have done to those users":
//
//	src := experiment.ArmTraffic(replay.Interactions(js, trial, since), def, "control", controlRevision)
//	rep, err := replay.Run(ctx, variantEngine, src, replay.Config{}, replay.Deps{})
func ArmTraffic(src replay.Source, def *Definition, arm, revision string) replay.Source {
	a := NewAssigner(def)
	return func(ctx context.Context, yield func(replay.Record) error) error {
		return src(ctx, func(rec replay.Record) error {
			if len(rec.Input) == 0 || (revision != "" && rec.Revision != revision) {
				return nil
			}
			in, err := policies.ParseInput(rec.Input)
			if err != nil || a.ArmOf(in.Caller.User, in.Caller.Cohort) != arm {
				return nil
			}
			return yield(rec)
		})
	}
}
