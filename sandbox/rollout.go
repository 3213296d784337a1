package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies/trial"
)

// This file wires staged rollouts into the sandbox: the controller that moves
// every rollout through its steps, the watcher that turns the ROLLOUTS bucket into
// the gateway's plans, the model registry, and their admin API.

// Bounds of rollout admin requests.
const (
	// maxRolloutBody bounds a rollout, action, model or review request body.
	maxRolloutBody = deploy.MaxSpecBytes + 4<<10
	// modelCheckTimeout bounds the conformance check run when a model is added.
	modelCheckTimeout = 60 * time.Second
)

// rolloutParts are the rollout components of a running sandbox.
type rolloutParts struct {
	ctrl       *deploy.Controller
	watcher    *deploy.Watcher
	models     *deploy.Models
	modelWatch *modelWatcher // registered models → the gateway (rollout_models.go)
}

// startRollouts starts the rollout watcher on the gateway's assigner (before the
// gateway serves, so it never routes by a stale split) and the controller.
func (s *Sandbox) startRollouts(ctx context.Context) error {
	if s.assigner == nil || s.js == nil || s.store == nil {
		return errors.New("rollouts: the bus, the incident store and the assigner must start first")
	}
	models, err := deploy.OpenModels(ctx, s.js, s.replicas(), s.clk)
	if err != nil {
		return err
	}
	w, err := deploy.NewWatcher(deploy.WatcherDeps{JS: s.js, Assigner: s.assigner, Logger: s.log})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	s.rollouts = &rolloutParts{watcher: w, models: models}
	ctrl, err := deploy.New(deploy.Config{}, deploy.Deps{JS: s.js, Evidence: s.store, Clock: s.clk, Logger: s.log, OnTransition: s.auditTransition})
	if err != nil {
		return err
	}
	// Started here, under a leadership lease, or only opened for manual actions,
	// by role (roles.go).
	if err := s.startController(ctx, ctrl); err != nil {
		return err
	}
	s.rollouts.ctrl = ctrl
	return nil
}

// stopRollouts stops the model watch, the controller, then the rollout watcher.
func (s *Sandbox) stopRollouts(ctx context.Context) error {
	r := s.rollouts
	if r == nil {
		return nil
	}
	s.rollouts = nil
	var errs []error
	if r.modelWatch != nil {
		errs = append(errs, r.modelWatch.stop(ctx))
	}
	if r.ctrl != nil {
		errs = append(errs, r.ctrl.Stop(ctx))
	}
	if r.watcher != nil {
		errs = append(errs, r.watcher.Stop(ctx))
	}
	return errors.Join(errs...)
}

// rolloutRoutes registers the rollout, model and review endpoints.
func (a *adminServer) rolloutRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/rollouts", a.auth(a.listRollouts))
	mux.Handle("POST /api/v1/rollouts", a.auth(a.applyRollout))
	mux.Handle("GET /api/v1/rollouts/{trial}", a.auth(a.getRollout))
	mux.Handle("POST /api/v1/rollouts/{trial}/{action}", a.auth(a.rolloutAction))
	mux.Handle("GET /api/v1/models", a.auth(a.listModels))
	mux.Handle("POST /api/v1/models", a.auth(a.addModel))
	mux.Handle("POST /api/v1/incidents/{id}/review", a.auth(a.reviewIncident))
}

// rolloutParts returns the running rollout parts, or answers 503.
func (a *adminServer) rolloutParts(w http.ResponseWriter) *rolloutParts {
	r := a.s.rollouts
	if r == nil || r.ctrl == nil {
		apiError(w, http.StatusServiceUnavailable, "rollouts_unavailable", "rollouts are not running in this process")
		return nil
	}
	return r
}

// decodeBody decodes a bounded JSON body into v, rejecting unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRolloutBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxRolloutBody))
			return false
		}
		apiError(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+err.Error())
		return false
	}
	if dec.More() {
		apiError(w, http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON body")
		return false
	}
	return true
}

// rolloutError answers a deploy error with the right status.
func (a *adminServer) rolloutError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, deploy.ErrInvalidSpec), errors.Is(err, deploy.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, deploy.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, deploy.ErrAction):
		apiError(w, http.StatusConflict, "action_not_possible", err.Error())
	case errors.Is(err, deploy.ErrConflict):
		apiError(w, http.StatusConflict, "conflict", err.Error()+"; try again")
	default:
		a.internal(w, what, err)
	}
}

// applyRequest is the body of POST /api/v1/rollouts.
type applyRequest struct {
	// Plan is the rollout plan as YAML text.
	Plan   string `json:"plan"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

func (a *adminServer) applyRollout(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	var req applyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	spec, err := deploy.ParseSpec("plan", []byte(req.Plan))
	if err != nil {
		a.rolloutError(w, "apply rollout", err)
		return
	}
	if problems := a.s.checkRolloutTargets(r.Context(), spec); len(problems) > 0 {
		apiError(w, http.StatusUnprocessableEntity, "unknown_target", strings.Join(problems, "; "))
		return
	}
	// A plan that sets no thresholds of its own gates on the risk thresholds
	// the regulator wrote into the trial's definition.
	if len(spec.Thresholds) == 0 {
		ts, err := a.s.trialThresholds(r.Context(), spec.Trial)
		if err != nil {
			apiError(w, http.StatusUnprocessableEntity, "invalid_plan", err.Error())
			return
		}
		spec.Thresholds = ts
	}
	st, err := rp.ctrl.Apply(r.Context(), spec, req.Actor, req.Reason)
	if err != nil {
		a.rolloutError(w, "apply rollout", err)
		return
	}
	a.log.Info("rollout applied", "kind", LogKindRollout, "trial", spec.Trial, "actor", req.Actor, "generation", st.Generation)
	a.audit(r.Context(), incidents.AuditRecord{Actor: req.Actor, Action: "rollout.apply", Object: "rollout:" + spec.Trial, Trial: spec.Trial, Reason: req.Reason,
		Detail: map[string]any{"generation": st.Generation}})
	writeJSON(w, http.StatusOK, map[string]any{"rollout": st})
}

// trialThresholds converts the risk_thresholds of a trial's newest stored
// definition into gate thresholds (none when it has no definition). A rate of
// 0 ("none tolerated") cannot be shown by an upper confidence bound, so it is
// not a gate threshold: a confirmed critical incident already trips the kill
// switch, and reviewers see every confirmed one.
func (s *Sandbox) trialThresholds(ctx context.Context, id string) ([]deploy.Threshold, error) {
	rev, err := s.store.TrialRevision(ctx, id, 0)
	if errors.Is(err, incidents.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := trial.Parse(id+".yaml", []byte(rev.Source))
	if err != nil {
		return nil, fmt.Errorf("trial %s revision %d: %w", id, rev.Revision, err)
	}
	var out []deploy.Threshold
	for _, cat := range slices.Sorted(maps.Keys(t.RiskThresholds)) {
		for _, sev := range slices.Sorted(maps.Keys(t.RiskThresholds[cat])) {
			if rate := t.RiskThresholds[cat][sev]; rate > 0 && rate < 1 {
				out = append(out, deploy.Threshold{Category: cat, Severity: sev, MaxRate: rate})
			}
		}
	}
	if len(out) > deploy.MaxThresholds {
		return nil, fmt.Errorf("trial %s: %d risk thresholds, a plan takes at most %d; set thresholds in the plan", id, len(out), deploy.MaxThresholds)
	}
	return out, nil
}

// checkRolloutTargets lists what in a plan this sandbox cannot serve: a trial it
// does not run, or a model that is neither configured nor registered.
func (s *Sandbox) checkRolloutTargets(ctx context.Context, spec deploy.Spec) []string {
	var problems []string
	if !s.knownTrial(ctx, spec.Trial) {
		problems = append(problems, fmt.Sprintf("trial %q is neither configured in this sandbox nor applied (stagegate trial apply)", spec.Trial))
	}
	for _, m := range []struct{ role, name string }{{"candidate", spec.Candidate}, {"baseline", spec.Baseline}} {
		if s.knownModel(ctx, m.name) {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s model %q is neither configured nor registered (stagegate model add)", m.role, m.name))
	}
	return problems
}

func (s *Sandbox) configuredModel(name string) bool {
	for _, m := range s.cfg.Simulators {
		if m.Name == name {
			return true
		}
	}
	for _, m := range s.cfg.Models {
		if m.Name == name {
			return true
		}
	}
	return false
}

func (a *adminServer) listRollouts(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	list, err := rp.ctrl.List(r.Context())
	if err != nil {
		a.rolloutError(w, "list rollouts", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollouts": list, "count": len(list)})
}

func (a *adminServer) getRollout(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	st, err := rp.ctrl.Status(r.Context(), r.PathValue("trial"))
	if err != nil {
		a.rolloutError(w, "rollout status", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollout": st, "plan": st.Plan()})
}

// actionRequest is the body of POST /api/v1/rollouts/{trial}/{action}.
type actionRequest struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

func (a *adminServer) rolloutAction(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	actions := map[string]func(context.Context, string, string, string) (*deploy.State, error){
		"abort": rp.ctrl.Abort, "promote": rp.ctrl.Promote, "pause": rp.ctrl.Pause, "resume": rp.ctrl.Resume,
	}
	action := r.PathValue("action")
	do, ok := actions[action]
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "no rollout action "+action+"; want abort, promote, pause or resume")
		return
	}
	var req actionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	trial := r.PathValue("trial")
	st, err := do(r.Context(), trial, req.Actor, req.Reason)
	if err != nil {
		a.rolloutError(w, "rollout "+action, err)
		return
	}
	a.log.Info("rollout "+action, "kind", LogKindRollout, "trial", trial, "actor", req.Actor, "reason", req.Reason, "status", st.Status)
	a.audit(r.Context(), incidents.AuditRecord{Actor: req.Actor, Action: "rollout." + action, Object: "rollout:" + trial, Trial: trial, Reason: req.Reason,
		Detail: map[string]any{"status": st.Status}})
	writeJSON(w, http.StatusOK, map[string]any{"rollout": st})
}

func (a *adminServer) listModels(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	list, err := rp.models.List(r.Context())
	if err != nil {
		a.rolloutError(w, "list models", err)
		return
	}
	configured := []string{}
	for _, m := range a.s.cfg.Simulators {
		configured = append(configured, m.Name)
	}
	for _, m := range a.s.cfg.Models {
		configured = append(configured, m.Name)
	}
	answer := map[string]any{"registered": list, "configured": configured}
	if rp.modelWatch != nil {
		routable, problems := rp.modelWatch.status()
		answer["routable"], answer["problems"] = routable, problems
	}
	writeJSON(w, http.StatusOK, answer)
}

// addModelRequest is the body of POST /api/v1/models.
type addModelRequest struct {
	deploy.ModelSpec
	// Actor is who registers the model.
	Actor string `json:"actor"`
	// DryRun runs the check without registering.
	DryRun bool `json:"dry_run"`
}

// addModel checks a model (list, completion, stream) with its credentials resolved
// in this process, and registers it only when every check passed.
func (a *adminServer) addModel(w http.ResponseWriter, r *http.Request) {
	rp := a.rolloutParts(w)
	if rp == nil {
		return
	}
	var req addModelRequest
	if !decodeBody(w, r, &req) {
		return
	}
	m := req.ModelSpec
	m.Schema, m.AddedBy, m.AddedAt = "", req.Actor, time.Time{}
	var errs []error
	if strings.TrimSpace(req.Actor) == "" || len(req.Actor) > deploy.MaxActorLen {
		errs = append(errs, fmt.Errorf("actor is required (who registers the model, 1-%d bytes)", deploy.MaxActorLen))
	}
	if err := m.Validate(); err != nil {
		errs = append(errs, err)
	}
	if a.s.configuredModel(m.Name) {
		errs = append(errs, fmt.Errorf("model %s is already defined in the configuration", m.Name))
	}
	if err := errors.Join(errs...); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	key, err := m.APIKey(a.s.env)
	if err != nil {
		apiError(w, http.StatusUnprocessableEntity, "credentials_unavailable", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), modelCheckTimeout)
	defer cancel()
	report, err := deploy.CheckModel(ctx, m.BaseURL, key, m.Model())
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error": map[string]string{"message": err.Error(), "code": "model_check_failed"}, "check": report,
		})
		return
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, map[string]any{"model": m, "check": report, "registered": false})
		return
	}
	stored, err := rp.models.Put(r.Context(), m)
	if err != nil {
		a.rolloutError(w, "register model", err)
		return
	}
	a.log.Info("model registered", "kind", LogKindRollout, "model", m.Name, "base_url", m.BaseURL, "actor", req.Actor)
	a.audit(r.Context(), incidents.AuditRecord{Actor: req.Actor, Action: "model.add", Object: "model:" + m.Name,
		Detail: map[string]any{"base_url": m.BaseURL}})
	writeJSON(w, http.StatusOK, map[string]any{"model": stored, "check": report, "registered": true})
}

// reviewIncident applies a reviewer's verdict; a confirmation nudges the rollout
// controller so a kill switch acts at once.
func (a *adminServer) reviewIncident(w http.ResponseWriter, r *http.Request) {
	var v incidents.Verdict
	if !decodeBody(w, r, &v) {
		return
	}
	inc, err := a.s.store.Review(r.Context(), r.PathValue("id"), v)
	switch {
	case errors.Is(err, incidents.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case errors.Is(err, incidents.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case errors.Is(err, incidents.ErrTransition):
		apiError(w, http.StatusConflict, "transition_not_allowed", err.Error())
		return
	case err != nil:
		a.internal(w, "review incident", err)
		return
	}
	if rp := a.s.rollouts; rp != nil && rp.ctrl != nil {
		rp.ctrl.Nudge()
	}
	a.log.Info("incident reviewed", "incident", inc.ID, "status", inc.Status, "severity", inc.Severity, "actor", v.Actor)
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc})
}

// auditTransition puts a transition the controller made on its own (a gate
// verdict, an elapsed pause, the kill switch) into the audit trail and the
// rollout log.
func (s *Sandbox) auditTransition(ctx context.Context, trial string, t deploy.Transition) {
	s.log.Info("rollout transition", "kind", LogKindRollout, "trial", trial, "from", t.From, "to", t.To, "cause", t.Cause)
	if _, err := s.store.Audit(ctx, incidents.AuditRecord{Actor: t.Actor, Action: "rollout.transition", Object: "rollout:" + trial,
		Trial: trial, Reason: t.Cause, Detail: map[string]any{"from": t.From, "to": t.To, "at": t.At}}); err != nil {
		s.log.Error("audit rollout transition", "kind", LogKindAudit, "trial", trial, "err", err)
	}
}
