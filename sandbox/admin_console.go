package sandbox

import (
	"context"
	"net/http"
	"strings"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/sandbox/console"
)

// consoleRoutes mounts the reviewers' console (/console/) and the review API
// (/api/v1/review/) on the admin mux. The admin bearer token acts as the admin
// role there; people sign in with accounts made by `stagegate user add`.
func (a *adminServer) consoleRoutes(mux *http.ServeMux) {
	c, err := console.New(console.Config{}, console.Deps{
		Store: a.s.store, AdminTokenSHA256: a.tokenHash, Clock: a.s.clk, Logger: a.s.log,
		Experiments: a.experimentViews,
		Rollout: func(ctx context.Context, trial string) (*deploy.State, error) {
			if rp := a.s.rollouts; rp != nil && rp.ctrl != nil {
				return rp.ctrl.Status(ctx, trial)
			}
			return nil, deploy.ErrNotFound
		},
		Nudge: func() {
			if rp := a.s.rollouts; rp != nil && rp.ctrl != nil {
				rp.ctrl.Nudge()
			}
		},
	})
	if err != nil {
		a.log.Error("console disabled", "err", err)
		return
	}
	c.Register(mux)
}

// experimentViews lists a trial's policy experiments with their analysis for the
// console's trial page.
func (a *adminServer) experimentViews(ctx context.Context, trial string) ([]console.ExperimentView, error) {
	ep := a.s.expParts
	if ep == nil || ep.mgr == nil {
		return nil, nil
	}
	list, err := ep.mgr.List(ctx, trial)
	if err != nil {
		return nil, err
	}
	out := make([]console.ExperimentView, 0, len(list))
	for _, e := range list {
		v := console.ExperimentView{Name: e.Name, Status: e.Status}
		if rep, err := ep.mgr.Report(ctx, e.Name); err == nil {
			var b strings.Builder
			_ = rep.WriteText(&b)
			v.Report = b.String()
		} else {
			v.Report = "no analysis yet: " + err.Error()
		}
		out = append(out, v)
	}
	return out, nil
}
