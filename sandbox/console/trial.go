package console

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/policies/trial"
)

// ReportStore is what BuildReport reads.
type ReportStore interface {
	TrialReport(ctx context.Context, o incidents.ReportOptions) (*incidents.Report, error)
	TrialRevision(ctx context.Context, trial string, n int) (incidents.TrialRevision, error)
}

// BuildReport gathers the report of trial id: the trial's definition (title,
// sponsor, regulator) from its latest stored revision, the rollout state when
// one is given, and confirmed-incident rates with the rollout gates' Wilson
// intervals at confidence. The CLI (offline) and the console share it.
func BuildReport(ctx context.Context, store ReportStore, id string, confidence float64, state *deploy.State) (*incidents.Report, error) {
	z := deploy.ZForConfidence(confidence)
	if math.IsNaN(z) {
		return nil, errors.New("report confidence must be in (0, 1)")
	}
	o := incidents.ReportOptions{
		Trial: id, Confidence: confidence,
		Interval: func(k, n int64) (float64, float64) { return deploy.Wilson(k, n, z) },
	}
	rev, err := store.TrialRevision(ctx, id, 0)
	switch {
	case err == nil:
		if t, perr := trial.Parse(id+".yaml", []byte(rev.Source)); perr == nil {
			o.Title, o.Sponsor, o.SponsorContact = t.Title, t.Sponsor.Name, t.Sponsor.Contact
			o.Regulator, o.RegulatorContact = t.Regulator.Name, t.Regulator.Contact
		}
	case !errors.Is(err, incidents.ErrNotFound):
		return nil, err
	}
	if state != nil {
		o.Rollout = RolloutSummary(state)
	}
	return store.TrialReport(ctx, o)
}

// RolloutSummary turns a rollout state into the report's rollout part.
func RolloutSummary(s *deploy.State) *incidents.RolloutSummary {
	out := &incidents.RolloutSummary{Candidate: s.Spec.Candidate, Baseline: s.Spec.Baseline, Stage: s.Traffic.Stage,
		Status: s.Status, Message: s.Message, History: []incidents.RolloutEvent{}}
	for _, h := range s.History {
		out.History = append(out.History, incidents.RolloutEvent{At: h.At, From: h.From, To: h.To, Cause: h.Cause, Actor: h.Actor, Reason: h.Reason})
	}
	return out
}

// rolloutState reads a trial's rollout, nil when there is none or no controller.
func (c *Console) rolloutState(ctx context.Context, id string) *deploy.State {
	if c.rollout == nil {
		return nil
	}
	st, err := c.rollout(ctx, id)
	if err != nil {
		if !errors.Is(err, deploy.ErrNotFound) {
			c.log.Warn("console: rollout state", "trial", id, "err", err)
		}
		return nil
	}
	return st
}

// gateRow is one model's gate inputs.
type gateRow struct {
	Model    string
	Role     string
	Evidence *incidents.RolloutEvidence
	// ConfirmedAll and ConfirmedSevere count confirmed incidents (high or worse).
	ConfirmedAll, ConfirmedSevere int64
}

// bar is one bucket of the incident chart (SVG coordinates).
type bar struct {
	X, W, Y, H, CY, CH float64
	Label, Title       string
}

type chart struct {
	Bars   []bar
	Max    int64
	Width  int
	Height int
}

const (
	chartDays   = 30
	chartWidth  = 720
	chartHeight = 160
)

// incidentChart lays out incidents (and the confirmed among them) per day.
func incidentChart(pts []incidents.RatePoint) chart {
	ch := chart{Width: chartWidth, Height: chartHeight}
	for _, p := range pts {
		ch.Max = max(ch.Max, p.Incidents)
	}
	if len(pts) == 0 {
		return ch
	}
	w := float64(chartWidth) / float64(len(pts))
	scale := float64(chartHeight-20) / float64(max(ch.Max, 1))
	for i, p := range pts {
		h, chh := float64(p.Incidents)*scale, float64(p.Confirmed)*scale
		rate := "no traffic"
		if p.Interactions > 0 {
			rate = strconv.FormatFloat(float64(p.Incidents)/float64(p.Interactions)*100, 'f', 1, 64) + " % of interactions"
		}
		ch.Bars = append(ch.Bars, bar{
			X: float64(i)*w + 1, W: max(w-2, 1), Y: float64(chartHeight) - h, H: h, CY: float64(chartHeight) - chh, CH: chh,
			Label: p.Start.Format("01-02"),
			Title: p.Start.Format("2006-01-02") + ": " + strconv.FormatInt(p.Incidents, 10) + " incidents (" +
				strconv.FormatInt(p.Confirmed, 10) + " confirmed), " + strconv.FormatInt(p.Interactions, 10) + " interactions, " + rate,
		})
	}
	return ch
}

type trialPage struct {
	base
	Trial     string
	Rollout   *deploy.State
	Gates     []gateRow
	Report    *incidents.Report
	Chart     chart
	Deadlines *incidents.Queue
	Rules     incidents.TrialRules
	CanReport bool
	// Experiments are the trial's policy experiments with their analysis.
	Experiments []ExperimentView
}

func (c *Console) trialPage(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("trial")
	if !p.user.CanSee(id) {
		c.errorPage(w, p, http.StatusForbidden, "Forbidden", "You cannot see trial "+id+".")
		return
	}
	ctx := r.Context()
	v := trialPage{base: c.baseFor(ctx, p, "trial", "Trial "+id), Trial: id, CanReport: p.user.Can(incidents.PermReport)}
	v.Rollout = c.rolloutState(ctx, id)
	rep, err := BuildReport(ctx, c.store, id, c.cfg.Confidence, v.Rollout)
	if errors.Is(err, incidents.ErrInvalid) {
		c.errorPage(w, p, http.StatusNotFound, "Not found", "There is no trial "+id+".")
		return
	}
	if err != nil {
		c.internal(w, p, "trial report", err)
		return
	}
	v.Report = rep
	if v.Gates, err = c.gateRows(ctx, id, rep, v.Rollout); err != nil {
		c.internal(w, p, "gate numbers", err)
		return
	}
	now := c.clk.Now().UTC()
	day := 24 * time.Hour
	until := now.Truncate(day).Add(day)
	pts, err := c.store.RatePoints(ctx, id, until.Add(-chartDays*day), until, day)
	if err != nil {
		c.internal(w, p, "incident rates", err)
		return
	}
	v.Chart = incidentChart(pts)
	if v.Deadlines, err = c.store.Queue(ctx, incidents.QueueFilter{Scope: p.user.Scope(), Trial: id,
		Deadline: incidents.DeadlineFilterPending, Sort: incidents.SortDeadline, Limit: 50}); err != nil {
		c.internal(w, p, "deadline board", err)
		return
	}
	if c.experiments != nil {
		if v.Experiments, err = c.experiments(ctx, id); err != nil {
			c.log.Warn("console: experiments", "trial", id, "err", err)
		}
	}
	if v.Rules, err = c.store.TrialRules(ctx, id); err != nil {
		c.internal(w, p, "review rules", err)
		return
	}
	c.render(w, http.StatusOK, "trial", v)
}

// gateRows reads the rollout gates' inputs for each model of the trial: since
// the current step began for the candidate of a running rollout, over the whole
// trial otherwise.
func (c *Console) gateRows(ctx context.Context, id string, rep *incidents.Report, st *deploy.State) ([]gateRow, error) {
	models := map[string]string{}
	for _, t := range rep.Traffic {
		models[t.Model] = ""
	}
	for _, rt := range rep.Rates {
		models[rt.Model] = ""
	}
	var since time.Time
	if st != nil {
		models[st.Spec.Candidate], models[st.Spec.Baseline] = "candidate", "baseline"
		since = st.StepStartedAt
	}
	var out []gateRow
	for _, m := range sortedKeys(models) {
		s := time.Time{}
		if models[m] == "candidate" {
			s = since
		}
		ev, err := c.store.RolloutEvidence(ctx, id, m, s)
		if err != nil {
			return nil, err
		}
		out = append(out, gateRow{Model: m, Role: models[m], Evidence: ev,
			ConfirmedAll: ev.ConfirmedAtLeast("*", "low"), ConfirmedSevere: ev.ConfirmedAtLeast("*", "high")})
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// reportDownload serves the trial report as a file.
func (c *Console) reportDownload(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("trial")
	if !p.user.CanSee(id) || !p.user.Can(incidents.PermReport) {
		c.errorPage(w, p, http.StatusForbidden, "Forbidden", "You may not read the report of trial "+id+".")
		return
	}
	c.serveReport(w, r, id, func(status int, msg string) { c.errorPage(w, p, status, "Report failed", msg) })
}

// serveReport renders the report of trial id in the requested format as an
// attachment; fail answers errors.
func (c *Console) serveReport(w http.ResponseWriter, r *http.Request, id string, fail func(status int, msg string)) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = incidents.FormatHTML
	}
	if !incidents.ValidReportFormat(format) {
		fail(http.StatusBadRequest, "format must be html, json or csv")
		return
	}
	rep, err := BuildReport(r.Context(), c.store, id, c.cfg.Confidence, c.rolloutState(r.Context(), id))
	if errors.Is(err, incidents.ErrInvalid) {
		fail(http.StatusNotFound, "there is no trial "+id)
		return
	}
	if err != nil {
		c.log.Error("console report", "trial", id, "err", err)
		fail(http.StatusInternalServerError, "the report could not be built; the error is in the server log")
		return
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		c.log.Error("console report", "trial", id, "err", err)
		fail(http.StatusInternalServerError, "the report could not be written")
		return
	}
	secure(w)
	if format == incidents.FormatHTML {
		w.Header().Set("Content-Security-Policy", reportCSP)
	}
	w.Header().Set("Content-Type", incidents.ReportContentType(format))
	w.Header().Set("Content-Disposition", `attachment; filename="stagegate-report-`+id+"-"+c.clk.Now().UTC().Format("20060102")+"."+format+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

type auditPage struct {
	base
	Verify  incidents.AuditVerification
	Entries []incidents.AuditEntry
	Holds   []incidents.LegalHold
	Trial   string
}

// auditPage shows the audit chain's status and recent entries: all for an
// administrator, a trial's (one the regulator oversees) otherwise.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.user.Can(incidents.PermAudit) {
		c.errorPage(w, p, http.StatusForbidden, "Forbidden", "Only regulators and administrators read the audit trail.")
		return
	}
	ctx := r.Context()
	v := auditPage{base: c.baseFor(ctx, p, "audit", "Audit trail"), Trial: r.URL.Query().Get("trial")}
	if !p.user.Scope().All {
		if v.Trial == "" && len(p.user.Trials) > 0 {
			v.Trial = p.user.Trials[0]
		}
		if !p.user.CanSee(v.Trial) {
			c.errorPage(w, p, http.StatusForbidden, "Forbidden", "You cannot see the audit entries of trial "+v.Trial+".")
			return
		}
	}
	var err error
	if v.Verify, err = c.store.VerifyAudit(ctx); err != nil {
		c.internal(w, p, "audit verification", err)
		return
	}
	if v.Entries, err = c.store.AuditEntries(ctx, incidents.AuditFilter{Trial: v.Trial, Limit: 200}); err != nil {
		if errors.Is(err, incidents.ErrInvalid) {
			c.errorPage(w, p, http.StatusBadRequest, "Bad filter", err.Error())
			return
		}
		c.internal(w, p, "audit entries", err)
		return
	}
	if v.Holds, err = c.store.LegalHolds(ctx); err != nil {
		c.internal(w, p, "legal holds", err)
		return
	}
	c.render(w, http.StatusOK, "audit", v)
}
