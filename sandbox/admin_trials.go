package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies"
	"github.com/stagegate/stagegate/policies/trial"
)

// Trial definitions over the admin API: apply (validate, check the policy it
// names, store as the next numbered revision with who applied it), list, show,
// history. The store keeps the YAML exactly as applied.

// maxTrialBody bounds POST /api/v1/trials: the YAML (JSON-escaped, so up to
// twice its size) plus the other fields.
const maxTrialBody = 2*trial.MaxBytes + 64<<10

// defaultTrialActor names who applied a trial when the request does not say:
// the holder of the admin token.
const defaultTrialActor = "admin-token"

func (a *adminServer) trialRoutes(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/trials", a.auth(a.applyTrial))
	mux.Handle("GET /api/v1/trials", a.auth(a.listTrials))
	mux.Handle("GET /api/v1/trials/{id}", a.auth(a.getTrial))
	mux.Handle("GET /api/v1/trials/{id}/revisions", a.auth(a.trialHistory))
}

// policyStatusRoutes serves the policy reload status of the running trials
// (revision in service, last refused revision and why, reload and memo
// counters): GET /api/v1/policies and GET /api/v1/policies/{trial}. statuses
// returns them by trial id, e.g. from each trial's *policies.Reloader.
func (a *adminServer) policyStatusRoutes(mux *http.ServeMux, statuses func() map[string]policies.ReloadStatus) {
	mux.Handle("GET /api/v1/policies", a.auth(func(w http.ResponseWriter, _ *http.Request) {
		all := statuses()
		unhealthy := 0
		for _, st := range all {
			if !st.Healthy {
				unhealthy++
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"policies": all, "unhealthy": unhealthy})
	}))
	mux.Handle("GET /api/v1/policies/{trial}", a.auth(func(w http.ResponseWriter, r *http.Request) {
		st, ok := statuses()[r.PathValue("trial")]
		if !ok {
			apiError(w, http.StatusNotFound, "not_found", "no running trial "+r.PathValue("trial"))
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
}

// trialApplyRequest is the body of POST /api/v1/trials.
type trialApplyRequest struct {
	// Definition is the trial definition YAML, as written.
	Definition string `json:"definition"`
	// File names the YAML in messages (default "trial.yaml").
	File string `json:"file"`
	// Actor is who applies it (e.g. alice@regulator.example).
	Actor string `json:"actor"`
	// Comment says why.
	Comment string `json:"comment"`
	// DryRun validates and checks without storing.
	DryRun bool `json:"dry_run"`
}

// trialProblemsBody is the 400 answer to an invalid definition: every problem
// with its line and field.
type trialProblemsBody struct {
	Error struct {
		Message  string          `json:"message"`
		Code     string          `json:"code"`
		Problems []trial.Problem `json:"problems"`
	} `json:"error"`
}

func (a *adminServer) applyTrial(w http.ResponseWriter, r *http.Request) {
	var req trialApplyRequest
	if !decodeTrialBody(w, r, &req) {
		return
	}
	if req.File == "" {
		req.File = "trial.yaml"
	}
	if req.Actor == "" {
		req.Actor = defaultTrialActor
	}
	t, err := trial.Parse(req.File, []byte(req.Definition))
	if err != nil {
		var te *trial.Error
		if !errors.As(err, &te) {
			apiError(w, http.StatusBadRequest, "invalid_trial", err.Error())
			return
		}
		var body trialProblemsBody
		body.Error.Message = fmt.Sprintf("the trial definition has %d problem(s)", len(te.Problems))
		body.Error.Code = "invalid_trial"
		body.Error.Problems = te.Problems
		writeJSON(w, http.StatusBadRequest, body)
		return
	}
	check, ok := a.checkTrialPolicy(w, r, t)
	if !ok {
		return
	}
	resp := map[string]any{"trial": t.ID, "definition": t, "policy_check": check, "dry_run": req.DryRun}
	// A gateway in this process must be able to serve the definition (its
	// models known, its policy compiled) before it is stored; gateways in
	// other processes pick it up from the store (trials_live.go).
	var ready *prepared
	if live := a.s.live; live != nil {
		live.applying.Lock()
		defer live.applying.Unlock()
		var err error
		if ready, err = live.prepare(r.Context(), t, 0); err != nil {
			apiError(w, http.StatusUnprocessableEntity, "trial_not_servable", err.Error())
			return
		}
	}
	if req.DryRun {
		if ready != nil {
			ready.discard(r.Context())
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	rev, created, err := a.s.store.PutTrialRevision(r.Context(), t.ID, req.Actor, req.Comment, []byte(req.Definition))
	if err != nil && ready != nil {
		ready.discard(r.Context())
	}
	if errors.Is(err, incidents.ErrInvalid) {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err != nil {
		a.internal(w, "store trial", err)
		return
	}
	if ready != nil {
		ready.revision = rev.Revision
		if err := a.s.live.commit(r.Context(), ready); err != nil {
			a.internal(w, "put the trial into service", err)
			return
		}
		resp["in_service"] = true
	}
	rev.Source = ""
	resp["revision"], resp["created"] = rev, created
	if created {
		a.log.Info("trial applied", "kind", LogKindAudit, "trial", t.ID, "revision", rev.Revision, "actor", req.Actor, "policy_revision", check["revision"])
		a.audit(r.Context(), incidents.AuditRecord{Actor: req.Actor, Action: "trial.apply", Object: "trial:" + t.ID, Trial: t.ID,
			Detail: map[string]any{"revision": rev.Revision, "policy_revision": check["revision"]}})
	}
	// 200 whether or not a revision was created ("created" says which), as
	// the other apply endpoints answer.
	writeJSON(w, http.StatusOK, resp)
}

// checkTrialPolicy compiles the policy a trial names and runs its Rego tests and
// decision corpus, as a reload would. A bundle is not fetched here (it is
// checked when the gateway pulls it). It answers the client itself on failure.
func (a *adminServer) checkTrialPolicy(w http.ResponseWriter, r *http.Request, t *trial.Trial) (map[string]any, bool) {
	rc, err := t.ReloaderConfig()
	if err != nil {
		apiError(w, http.StatusUnprocessableEntity, "policy_unavailable", err.Error())
		return nil, false
	}
	if rc.BundleURL != "" {
		return map[string]any{"skipped": "bundle policies are checked when the gateway pulls them"}, true
	}
	fsys := rc.FS
	if fsys == nil {
		fsys = policies.LoadDir(rc.Dir)
	}
	_, rep, err := policies.Check(r.Context(), policies.CheckConfig{Config: policies.Config{FS: fsys, Query: rc.Query}})
	if err != nil {
		apiError(w, http.StatusUnprocessableEntity, policies.Code(err), "policy "+t.Policy.Dir+": "+err.Error())
		return nil, false
	}
	if err := rep.Err(); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":  map[string]string{"message": "policy " + t.Policy.Dir + ": " + err.Error(), "code": policies.CodeCheck},
			"report": rep,
		})
		return nil, false
	}
	return map[string]any{"revision": rep.Revision, "tests": len(rep.Tests), "cases": len(rep.Cases)}, true
}

// trialSummary is one row of GET /api/v1/trials.
type trialSummary struct {
	incidents.TrialRevision
	Title string    `json:"title"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func (a *adminServer) listTrials(w http.ResponseWriter, r *http.Request) {
	latest, err := a.s.store.Trials(r.Context())
	if err != nil {
		a.internal(w, "list trials", err)
		return
	}
	out := make([]trialSummary, 0, len(latest))
	for _, rev := range latest {
		s := trialSummary{TrialRevision: rev}
		if full, err := a.s.store.TrialRevision(r.Context(), rev.Trial, rev.Revision); err == nil {
			if t, err := trial.Parse(rev.Trial+".yaml", []byte(full.Source)); err == nil {
				s.Title, s.Start, s.End = t.Title, t.Start, t.End
			}
		}
		out = append(out, s)
	}
	writeJSON(w, http.StatusOK, map[string]any{"trials": out, "count": len(out)})
}

func (a *adminServer) getTrial(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.URL.Query().Get("revision"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			apiError(w, http.StatusBadRequest, "invalid_revision", "revision must be a positive integer")
			return
		}
		n = v
	}
	rev, err := a.s.store.TrialRevision(r.Context(), r.PathValue("id"), n)
	if a.trialStoreError(w, r, err) {
		return
	}
	resp := map[string]any{"revision": rev}
	// Stored definitions were valid when applied; a later binary may read them
	// differently, which is worth showing rather than hiding.
	if t, err := trial.Parse(rev.Trial+".yaml", []byte(rev.Source)); err == nil {
		resp["definition"] = t
	} else {
		resp["definition_error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *adminServer) trialHistory(w http.ResponseWriter, r *http.Request) {
	list, err := a.s.store.TrialRevisions(r.Context(), r.PathValue("id"))
	if a.trialStoreError(w, r, err) {
		return
	}
	if len(list) == 0 {
		apiError(w, http.StatusNotFound, "not_found", "no trial "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"trial": r.PathValue("id"), "revisions": list})
}

// trialStoreError answers a store error; false when err is nil.
func (a *adminServer) trialStoreError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, incidents.ErrNotFound):
		apiError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, incidents.ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		a.internal(w, "read trial "+r.PathValue("id"), err)
	}
	return true
}

// decodeTrialBody reads one bounded JSON object, unknown fields refused.
func decodeTrialBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTrialBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxTrialBody))
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
