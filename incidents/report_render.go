package incidents

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

// Report formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatHTML = "html"
)

// ValidReportFormat reports whether f is json, csv or html.
func ValidReportFormat(f string) bool { return f == FormatJSON || f == FormatCSV || f == FormatHTML }

// ReportContentType is the media type of a report format.
func ReportContentType(f string) string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return "application/json"
}

// Write renders r in format f.
func (r *Report) Write(w io.Writer, f string) error {
	switch f {
	case FormatJSON:
		return r.WriteJSON(w)
	case FormatCSV:
		return r.WriteCSV(w)
	case FormatHTML:
		return r.WriteHTML(w)
	}
	return fmt.Errorf("%w: report format %q: want json, csv or html", ErrInvalid, f)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteCSV writes the report in long form, one number per row:
// section, dimension_1, dimension_2, dimension_3, metric, value.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	row := func(section, d1, d2, d3, metric, value string) {
		_ = cw.Write([]string{section, d1, d2, d3, metric, value})
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	f64 := func(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	row("section", "dimension_1", "dimension_2", "dimension_3", "metric", "value")
	row("trial", r.Trial, "", "", "title", r.Title)
	row("trial", r.Trial, "", "", "sponsor", r.Sponsor)
	row("trial", r.Trial, "", "", "regulator", r.Regulator)
	row("trial", r.Trial, "", "", "generated_at", ts(r.GeneratedAt))
	row("trial", r.Trial, "", "", "from", ts(r.From))
	row("trial", r.Trial, "", "", "to", ts(r.To))
	for _, t := range r.Traffic {
		row("traffic", t.Stage, t.Model, "", "interactions", i64(t.Interactions))
		row("traffic", t.Stage, t.Model, "", "answered", i64(t.Answered))
		row("traffic", t.Stage, t.Model, "", "denied", i64(t.Denied))
		row("traffic", t.Stage, t.Model, "", "errors", i64(t.Errors))
	}
	for _, c := range r.Incidents {
		row("incidents", c.Category, c.Severity, c.Status, "count", i64(c.Count))
	}
	for _, x := range r.Rates {
		row("confirmed_rate", x.Model, x.Category, "", "confirmed", i64(x.Confirmed))
		row("confirmed_rate", x.Model, x.Category, "", "interactions", i64(x.Interactions))
		row("confirmed_rate", x.Model, x.Category, "", "rate", f64(x.Rate))
		row("confirmed_rate", x.Model, x.Category, f64(r.Confidence), "lower", f64(x.Lower))
		row("confirmed_rate", x.Model, x.Category, f64(r.Confidence), "upper", f64(x.Upper))
	}
	for _, x := range r.ReviewTimes {
		for _, m := range []struct {
			name string
			v    string
		}{{"target_hours", strconv.Itoa(x.TargetHours)}, {"decided", strconv.Itoa(x.Decided)}, {"on_time", strconv.Itoa(x.OnTime)},
			{"late", strconv.Itoa(x.Late)}, {"median_hours", f64(x.MedianHours)}, {"p90_hours", f64(x.P90Hours)},
			{"pending", strconv.Itoa(x.Pending)}, {"overdue", strconv.Itoa(x.Overdue)}} {
			row("review_time", x.Severity, "", "", m.name, m.v)
		}
	}
	d := r.ReportDeadlines
	for _, m := range []struct {
		name string
		v    int
	}{{"serious", d.Serious}, {"filed_on_time", d.FiledOn}, {"filed_late", d.Late}, {"pending", d.Pending}, {"overdue", d.Overdue}} {
		row("art73_reports", "", "", "", m.name, strconv.Itoa(m.v))
	}
	for _, a := range r.Agreement {
		row("agreement", a.Category, "", "", "pairs", strconv.Itoa(a.N))
		row("agreement", a.Category, "", "", "observed", f64(a.Observed))
		if a.Defined {
			row("agreement", a.Category, "", "", "cohen_kappa", f64(a.Value))
		}
	}
	if r.Rollout != nil {
		row("rollout", r.Rollout.Candidate, r.Rollout.Baseline, "", "stage", r.Rollout.Stage)
		row("rollout", r.Rollout.Candidate, r.Rollout.Baseline, "", "status", r.Rollout.Status)
		for _, e := range r.Rollout.History {
			row("rollout_history", ts(e.At), e.From, e.To, e.Actor, e.Cause)
		}
	}
	for _, p := range r.PolicyRevisions {
		row("policy_revision", p.Revision, ts(p.FirstSeen), ts(p.LastSeen), "interactions", i64(p.Interactions))
	}
	for _, t := range r.TrialRevisions {
		row("trial_revision", strconv.Itoa(t.Revision), ts(t.CreatedAt), t.CreatedBy, "digest", t.Digest)
	}
	a := r.Audit
	row("audit", "", "", "", "chain_ok", strconv.FormatBool(a.OK))
	row("audit", "", "", "", "entries", i64(a.Entries))
	row("audit", "", "", "", "trial_entries", i64(a.TrialEntries))
	row("audit", "", "", "", "head_hash", a.HeadHash)
	row("audit", "", "", "", "legal_hold", strconv.FormatBool(a.LegalHold))
	row("audit", "", "", "", "retention_days", strconv.Itoa(a.RetentionDays))
	if !a.OK {
		row("audit", "", "", "", "broken_entry", i64(a.BrokenSeq))
		row("audit", "", "", "", "problem", a.Problem)
	}
	for _, x := range r.Drafts {
		row("art73_draft", x.IncidentID, x.Category, x.Severity, "harm", x.Harm)
		row("art73_draft", x.IncidentID, x.Category, x.Severity, "due", ts(x.Deadline.Due))
		row("art73_draft", x.IncidentID, x.Category, x.Severity, "filed", strconv.FormatBool(x.Filed))
	}
	cw.Flush()
	return cw.Error()
}

// WriteHTML writes the report as one self-contained HTML page (inline style, no
// scripts), fit to print or attach.
func (r *Report) WriteHTML(w io.Writer) error { return reportTemplate.Execute(w, r) }

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"pct":   func(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + " %" },
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"kappa": func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
}).Parse(reportHTML))

const reportHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Trial report: {{.Trial}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d232a;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e3e6ea}
th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#176f2c}.bad{color:#a4161a;font-weight:600}
.meta{color:#555}.draft{border:1px solid #ccd;padding:.5rem 1rem;margin:1rem 0;border-radius:4px}.draft dt{font-weight:600}
.draft dd{margin:0 0 .4rem 0;white-space:pre-wrap}
</style></head><body>
<h1>Trial report: {{if .Title}}{{.Title}}{{else}}{{.Trial}}{{end}}</h1>
<p class="meta">Trial <b>{{.Trial}}</b>{{if .Sponsor}} · sponsor {{.Sponsor}}{{end}}{{if .Regulator}} · overseen by {{.Regulator}}{{end}}<br>
Traffic from {{ts .From}} to {{ts .To}} · generated {{ts .GeneratedAt}} · schema {{.Schema}}</p>

<h2>Traffic by stage and model</h2>
<table><tr><th>stage</th><th>model</th><th>interactions</th><th>answered</th><th>denied</th><th>errors</th></tr>
{{range .Traffic}}<tr><td>{{.Stage}}</td><td>{{.Model}}</td><td class="n">{{.Interactions}}</td><td class="n">{{.Answered}}</td><td class="n">{{.Denied}}</td><td class="n">{{.Errors}}</td></tr>
{{else}}<tr><td colspan="6">no recorded traffic</td></tr>{{end}}</table>

<h2>Incidents</h2>
<table><tr><th>category</th><th>severity</th><th>verdict / status</th><th>count</th></tr>
{{range .Incidents}}<tr><td>{{.Category}}</td><td>{{.Severity}}</td><td>{{.Status}}</td><td class="n">{{.Count}}</td></tr>
{{else}}<tr><td colspan="4">no incidents</td></tr>{{end}}</table>

<h2>Confirmed-incident rates ({{pct .Confidence}} Wilson intervals)</h2>
<table><tr><th>model</th><th>category</th><th>confirmed</th><th>answered interactions</th><th>rate</th><th>interval</th></tr>
{{range .Rates}}<tr><td>{{.Model}}</td><td>{{if eq .Category "*"}}all{{else}}{{.Category}}{{end}}</td><td class="n">{{.Confirmed}}</td><td class="n">{{.Interactions}}</td><td class="n">{{pct .Rate}}</td><td class="n">{{pct .Lower}} – {{pct .Upper}}</td></tr>
{{else}}<tr><td colspan="6">no answered interactions</td></tr>{{end}}</table>

<h2>Review times against targets</h2>
<table><tr><th>severity</th><th>target</th><th>decided</th><th>on time</th><th>late</th><th>median</th><th>90th pct</th><th>pending</th><th>overdue</th></tr>
{{range .ReviewTimes}}<tr><td>{{.Severity}}</td><td class="n">{{.TargetHours}} h</td><td class="n">{{.Decided}}</td><td class="n">{{.OnTime}}</td><td class="n {{if .Late}}bad{{end}}">{{.Late}}</td><td class="n">{{num .MedianHours}} h</td><td class="n">{{num .P90Hours}} h</td><td class="n">{{.Pending}}</td><td class="n {{if .Overdue}}bad{{end}}">{{.Overdue}}</td></tr>
{{end}}</table>
{{with .ReportDeadlines}}<p>Art. 73 reporting: {{.Serious}} serious or potentially serious incident(s); {{.FiledOn}} filed on time, <span class="{{if .Late}}bad{{end}}">{{.Late}} late</span>, {{.Pending}} pending, <span class="{{if .Overdue}}bad{{end}}">{{.Overdue}} overdue</span>.</p>{{end}}

<h2>Reviewer agreement (second reviews)</h2>
<table><tr><th>category</th><th>pairs</th><th>observed agreement</th><th>Cohen's κ</th></tr>
{{range .Agreement}}<tr><td>{{if eq .Category "*"}}all{{else}}{{.Category}}{{end}}</td><td class="n">{{.N}}</td><td class="n">{{pct .Observed}}</td><td class="n">{{if .Defined}}{{kappa .Value}}{{else}}undefined{{end}}</td></tr>
{{end}}</table>

<h2>Rollout</h2>
{{with .Rollout}}<p>Candidate <b>{{.Candidate}}</b>, baseline {{.Baseline}}: stage <b>{{.Stage}}</b>, {{.Status}}{{if .Message}} — {{.Message}}{{end}}.</p>
<table><tr><th>when</th><th>from</th><th>to</th><th>cause</th><th>actor</th></tr>
{{range .History}}<tr><td>{{ts .At}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.Cause}}{{if .Reason}} ({{.Reason}}){{end}}</td><td>{{.Actor}}</td></tr>
{{end}}</table>{{else}}<p>No rollout information (no rollout controller was reachable when the report was made).</p>{{end}}

<h2>Policy and trial revisions</h2>
<table><tr><th>policy revision</th><th>interactions</th><th>first seen</th><th>last seen</th></tr>
{{range .PolicyRevisions}}<tr><td>{{if .Revision}}{{.Revision}}{{else}}(none recorded){{end}}</td><td class="n">{{.Interactions}}</td><td>{{ts .FirstSeen}}</td><td>{{ts .LastSeen}}</td></tr>
{{else}}<tr><td colspan="4">no traffic</td></tr>{{end}}</table>
<table><tr><th>trial revision</th><th>applied</th><th>by</th><th>comment</th><th>digest</th></tr>
{{range .TrialRevisions}}<tr><td class="n">{{.Revision}}</td><td>{{ts .CreatedAt}}</td><td>{{.CreatedBy}}</td><td>{{.Comment}}</td><td><code>{{.Digest}}</code></td></tr>
{{else}}<tr><td colspan="5">the trial definition was never applied through the admin API</td></tr>{{end}}</table>

<h2>Audit trail</h2>
{{with .Audit}}<p>Hash chain: {{if .OK}}<span class="ok">intact</span>{{else}}<span class="bad">BROKEN at entry {{.BrokenSeq}}: {{.Problem}}</span>{{end}};
{{.Entries}} entries checked ({{.TrialEntries}} of this trial){{if .PrunedThrough}}, pruned through entry {{.PrunedThrough}}{{end}};
head <code>{{.HeadHash}}</code>; checked {{ts .CheckedAt}}. Retention {{.RetentionDays}} days{{if .LegalHold}}, <b>under legal hold</b>{{end}}.</p>{{end}}

<h2>Art. 73 initial report drafts</h2>
{{range .Drafts}}<div class="draft"><h3>Serious incident {{.IncidentID}}{{if .Filed}} (filed){{end}}</h3><dl>
<dt>Report type</dt><dd>{{.ReportType}}</dd>
<dt>Provider</dt><dd>{{.Provider}}{{if .ProviderContact}} — {{.ProviderContact}}{{end}}</dd>
<dt>Market surveillance authority</dt><dd>{{.Authority}}{{if .AuthorityContact}} — {{.AuthorityContact}}{{end}}</dd>
<dt>AI system</dt><dd>{{.AISystem}}, model {{.Model}}</dd>
<dt>Occurred / provider aware</dt><dd>{{ts .OccurredAt}} / {{ts .AwareAt}}</dd>
<dt>Report due</dt><dd>{{ts .Deadline.Due}} — {{.Deadline.Basis}}</dd>
<dt>Harm</dt><dd>{{.HarmText}}</dd>
<dt>Classification</dt><dd>{{.Category}}, severity {{.Severity}}</dd>
<dt>Description</dt><dd>{{.Description}}</dd>
<dt>Evidence</dt><dd>{{range .Evidence}}{{.}}
{{else}}none recorded{{end}}</dd>
<dt>Confirmed</dt><dd>by {{.ConfirmedBy}} on {{ts .ConfirmedAt}}</dd>
<dt>Corrective actions</dt><dd>{{range .CorrectiveActions}}{{.}}
{{end}}</dd>
<dt>Note</dt><dd>{{.Note}}</dd></dl></div>
{{else}}<p>No confirmed serious incidents.</p>{{end}}
</body></html>
`
