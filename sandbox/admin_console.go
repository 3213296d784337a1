package sandbox

import (
	"context"
	"net/http"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/sandbox/console"
)

// consoleRoutes mounts the reviewers' console (/console/) and the review API
// (/api/v1/review/) on the admin mux. The admin bearer token acts as the admin
// role there; people sign in with accounts made by `stagegate user add`.
func (a *adminServer) consoleRoutes(mux *http.ServeMux) {
	c, err := console.New(console.Config{}, console.Deps{
		Store: a.s.store, AdminTokenSHA256: a.tokenHash, Clock: a.s.clk, Logger: a.s.log,
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
