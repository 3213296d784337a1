package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/experiment"
)

// Policy experiments (policies/experiment): trials with `experiments: true`
// get the experiment Decider around their policy and a watcher of the
// EXPERIMENTS bucket in every gateway; the manager (lifecycle, guard-rails,
// planned ends, reports) serves the admin API below, and its reconcile loop
// runs where the rollout controller runs.

// maxExperimentBody bounds POST /api/v1/experiments: the YAML (JSON-escaped,
// up to twice its size) and the other fields.
const maxExperimentBody = 2*experiment.MaxDefinitionBytes + 16<<10

// defaultExperimentActor names who acted when the request does not say.
const defaultExperimentActor = "admin-token"

// experimentParts are the experiment components of a running sandbox.
type experimentParts struct {
	mgr      *experiment.Manager
	watcher  *experiment.Watcher
	deciders map[string]*experiment.Decider // by trial, in this process's gateway
}

// experimentTrialPolicy is where a trial's policy comes from, for variants.
func experimentTrialPolicy(tc TrialConfig) experiment.TrialPolicy {
	tp := experiment.TrialPolicy{Query: tc.Query}
	if strings.HasPrefix(tc.Policy, experiment.BuiltinPrefix) {
		if fsys, err := policyFS(tc.Policy); err == nil {
			tp.FS = fsys
			return tp
		}
	}
	tp.Dir = tc.Policy
	return tp
}

// experimentDecider wraps a trial's policy decider when the trial runs
// experiments; otherwise it returns base itself.
func (s *Sandbox) experimentDecider(tc TrialConfig, base *policies.Reloader) (policies.Decider, error) {
	if !tc.Experiments {
		return base, nil
	}
	d, err := experiment.NewDecider(experiment.DeciderConfig{Trial: tc.ID, Policy: experimentTrialPolicy(tc)},
		experiment.DeciderDeps{Base: base, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("trial %s experiments: %w", tc.ID, err)
	}
	if s.expParts == nil {
		s.expParts = &experimentParts{deciders: map[string]*experiment.Decider{}}
	}
	s.expParts.deciders[tc.ID] = d
	return d, nil
}

// startExperimentWatcher starts following the EXPERIMENTS bucket for the
// gateway's deciders, before the gateway serves.
func (s *Sandbox) startExperimentWatcher(ctx context.Context) error {
	if s.expParts == nil || len(s.expParts.deciders) == 0 {
		return nil
	}
	w, err := experiment.NewWatcher(experiment.WatcherDeps{JS: s.js, Logger: s.log})
	if err != nil {
		return err
	}
	for _, d := range s.expParts.deciders {
		if err := w.Add(d); err != nil {
			return err
		}
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	s.expParts.watcher = w
	return nil
}

// startExperiments opens the experiment manager for the admin API and runs
// its reconcile loop where the rollout controller runs.
func (s *Sandbox) startExperiments(ctx context.Context) error {
	trials := map[string]experiment.TrialPolicy{}
	for _, tc := range s.cfg.Trials {
		if tc.Experiments {
			trials[tc.ID] = experimentTrialPolicy(tc)
		}
	}
	if len(trials) == 0 {
		return nil
	}
	m, err := experiment.New(experiment.Config{Replicas: s.replicas()}, experiment.Deps{
		JS: s.js, Store: s.store, Clock: s.clk, Logger: s.log,
		Trials: func(id string) (experiment.TrialPolicy, bool) { tp, ok := trials[id]; return tp, ok },
	})
	if err != nil {
		return err
	}
	if s.runs(RoleController) {
		err = m.Start(ctx)
	} else {
		err = m.Open(ctx)
	}
	if err != nil {
		return err
	}
	if s.expParts == nil {
		s.expParts = &experimentParts{deciders: map[string]*experiment.Decider{}}
	}
	s.expParts.mgr = m
	return nil
}

// stopExperiments stops the manager's loop and the watcher.
func (s *Sandbox) stopExperiments(ctx context.Context) error {
	p := s.expParts
	if p == nil {
		return nil
	}
	s.expParts = nil
	var errs []error
	if p.mgr != nil {
		errs = append(errs, p.mgr.Stop(ctx))
	}
	if p.watcher != nil {
		errs = append(errs, p.watcher.Stop(ctx))
	}
	return errors.Join(errs...)
}

func (a *adminServer) experimentRoutes(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/experiments", a.auth(a.applyExperiment))
	mux.Handle("GET /api/v1/experiments", a.auth(a.listExperiments))
	mux.Handle("GET /api/v1/experiments/{name}", a.auth(a.getExperiment))
	mux.Handle("GET /api/v1/experiments/{name}/report", a.auth(a.experimentReport))
	mux.Handle("POST /api/v1/experiments/{name}/{action}", a.auth(a.experimentAction))
}

// experimentManager returns the manager, or answers 503.
func (a *adminServer) experimentManager(w http.ResponseWriter) *experiment.Manager {
	if p := a.s.expParts; p != nil && p.mgr != nil {
		return p.mgr
	}
	apiError(w, http.StatusServiceUnavailable, "experiments_unavailable",
		"no trial runs experiments here: set experiments: true on a trial in the sandbox configuration")
	return nil
}

// experimentApplyRequest is the body of POST /api/v1/experiments.
type experimentApplyRequest struct {
	// Definition is the experiment definition YAML, as written.
	Definition string `json:"definition"`
	// File names the YAML in messages (default "experiment.yaml").
	File string `json:"file"`
	// Actor is who applies it.
	Actor string `json:"actor"`
	// DryRun checks without storing.
	DryRun bool `json:"dry_run"`
}

// experimentActionRequest is the body of start, stop and conclude.
type experimentActionRequest struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

func (a *adminServer) applyExperiment(w http.ResponseWriter, r *http.Request) {
	m := a.experimentManager(w)
	if m == nil {
		return
	}
	var req experimentApplyRequest
	if !decodeExperimentBody(w, r, &req, maxExperimentBody) {
		return
	}
	if req.File == "" {
		req.File = "experiment.yaml"
	}
	if req.Actor == "" {
		req.Actor = defaultExperimentActor
	}
	out, err := m.Apply(r.Context(), req.File, []byte(req.Definition), req.Actor, req.DryRun)
	if err != nil {
		a.experimentError(w, "apply experiment", err)
		return
	}
	if out.Created {
		a.log.Info("experiment applied", "experiment", out.Experiment.Name, "trial", out.Experiment.Trial, "revision", out.Experiment.Revision, "actor", req.Actor)
	}
	out.Experiment.Source = ""
	writeJSON(w, http.StatusOK, out)
}

func (a *adminServer) listExperiments(w http.ResponseWriter, r *http.Request) {
	m := a.experimentManager(w)
	if m == nil {
		return
	}
	list, err := m.List(r.Context(), r.URL.Query().Get("trial"))
	if err != nil {
		a.experimentError(w, "list experiments", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"experiments": list, "count": len(list)})
}

func (a *adminServer) getExperiment(w http.ResponseWriter, r *http.Request) {
	m := a.experimentManager(w)
	if m == nil {
		return
	}
	rec, hist, err := m.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		a.experimentError(w, "get experiment", err)
		return
	}
	resp := map[string]any{"experiment": rec, "transitions": hist}
	if def, err := experiment.Parse(rec.Name+".yaml", []byte(rec.Source)); err == nil {
		resp["definition"], resp["rule"] = def, experiment.RuleStatement(def)
	}
	// What this process's gateway serves for the experiment's trial.
	if p := a.s.expParts; p != nil {
		if d := p.deciders[rec.Trial]; d != nil {
			resp["serving"] = map[string]any{"status": d.Status(), "arms": d.Arms()}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *adminServer) experimentReport(w http.ResponseWriter, r *http.Request) {
	m := a.experimentManager(w)
	if m == nil {
		return
	}
	rep, err := m.Report(r.Context(), r.PathValue("name"))
	if err != nil {
		a.experimentError(w, "experiment report", err)
		return
	}
	if r.URL.Query().Get("format") == "text" {
		var b strings.Builder
		_ = rep.WriteText(&b)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"report": rep})
}

func (a *adminServer) experimentAction(w http.ResponseWriter, r *http.Request) {
	m := a.experimentManager(w)
	if m == nil {
		return
	}
	var req experimentActionRequest
	if !decodeExperimentBody(w, r, &req, 16<<10) {
		return
	}
	if req.Actor == "" {
		req.Actor = defaultExperimentActor
	}
	name := r.PathValue("name")
	var (
		rec incidents.Experiment
		rep *experiment.Report
		err error
	)
	switch action := r.PathValue("action"); action {
	case "start":
		rec, err = m.StartExperiment(r.Context(), name, req.Actor, req.Reason)
	case "stop":
		rec, err = m.StopExperiment(r.Context(), name, req.Actor, req.Reason)
	case "conclude":
		rec, rep, err = m.ConcludeExperiment(r.Context(), name, req.Actor, req.Reason)
	default:
		apiError(w, http.StatusNotFound, "not_found", "no experiment action "+action+" (start, stop, conclude)")
		return
	}
	if err != nil {
		a.experimentError(w, "experiment "+r.PathValue("action"), err)
		return
	}
	rec.Source = ""
	a.log.Info("experiment "+r.PathValue("action"), "experiment", name, "actor", req.Actor, "reason", req.Reason)
	resp := map[string]any{"experiment": rec}
	if rep != nil {
		resp["report"] = rep
	}
	writeJSON(w, http.StatusOK, resp)
}

// experimentProblemsBody is the 400 answer to an invalid definition.
type experimentProblemsBody struct {
	Error struct {
		Message  string               `json:"message"`
		Code     string               `json:"code"`
		Problems []experiment.Problem `json:"problems"`
	} `json:"error"`
}

// experimentError answers an experiment error with the right status.
func (a *adminServer) experimentError(w http.ResponseWriter, what string, err error) {
	var pe *experiment.Error
	switch {
	case errors.As(err, &pe):
		var body experimentProblemsBody
		body.Error.Message = fmt.Sprintf("the experiment definition has %d problem(s)", len(pe.Problems))
		body.Error.Code = "invalid_experiment"
		body.Error.Problems = pe.Problems
		writeJSON(w, http.StatusBadRequest, body)
	case errors.Is(err, incidents.ErrInvalid), errors.Is(err, experiment.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, experiment.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, experiment.ErrTransition):
		apiError(w, http.StatusConflict, "transition_not_allowed", err.Error())
	case errors.Is(err, experiment.ErrConflict):
		apiError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, experiment.ErrVariant):
		apiError(w, http.StatusUnprocessableEntity, "variant_unavailable", err.Error())
	default:
		a.internal(w, what, err)
	}
}

// decodeExperimentBody reads one JSON object of at most limit bytes, unknown
// fields refused.
func decodeExperimentBody(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", limit))
			return false
		}
		apiError(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON body")
		return false
	}
	return true
}
