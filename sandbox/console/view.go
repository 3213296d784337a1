package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
)

// pageTemplate is one page parsed with the layout.
type pageTemplate struct{ t *template.Template }

// pageNames are the templates/*.html files that are pages (the rest are parts).
var pageNames = []string{"login", "queue", "incident", "trial", "audit", "error"}

func loadPages() (map[string]*pageTemplate, error) {
	out := make(map[string]*pageTemplate, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = &pageTemplate{t: t}
	}
	return out, nil
}

// base is what every page shows.
type base struct {
	Page   string
	Title  string
	User   *incidents.User
	CSRF   string
	Flash  string
	Error  string
	Trials []string
	Now    time.Time
}

// CanAudit reports whether the audit page is in the navigation.
func (b base) CanAudit() bool { return b.User.Can(incidents.PermAudit) }

// render executes a page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, status int, page string, data any) {
	secure(w)
	var buf bytes.Buffer
	if err := c.pages[page].t.ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("console render", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the body of an error page.
type errorPage struct {
	base
	Status  int
	Heading string
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, p *principal, status int, heading, msg string) {
	b := base{Page: "error", Title: heading, Now: c.clk.Now()}
	if p != nil {
		b.User, b.CSRF = p.user, p.csrf()
	}
	c.render(w, status, "error", errorPage{base: b, Status: status, Heading: heading, Message: msg})
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dur": humanDuration,
	"until": func(d incidents.Deadline, now time.Time) string {
		if !d.Done.IsZero() {
			return "done " + d.Done.UTC().Format("2006-01-02 15:04")
		}
		left := d.Due.Sub(now)
		if left < 0 {
			return humanDuration(-left) + " overdue"
		}
		return "due in " + humanDuration(left)
	},
	"state": func(d incidents.Deadline, now time.Time) string { return d.State(now) },
	"pct":   func(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + " %" },
	"pct1":  func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"f3":    func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
	"f2":    func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"join":  strings.Join,
	"has":   slices.Contains[[]string],
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"sevs":  func() []string { return []string{"critical", "high", "medium", "low"} },
	"statuses": func() []string {
		return []string{incidents.StatusOpen, incidents.StatusInReview, incidents.StatusEscalated, incidents.StatusConfirmed, incidents.StatusDismissed}
	},
	"harms": func() []string {
		return []string{incidents.HarmNone, incidents.HarmSerious, incidents.HarmDeath, incidents.HarmWidespread, incidents.HarmCriticalInfrastructure}
	},
	"count": func(m map[string]int, k string) int { return m[k] },
	"add":   func(a, b int) int { return a + b },
}

// humanDuration is a short duration: 3d 4h, 5h 12m, 7m.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	}
	return fmt.Sprintf("%dm", mins)
}

// segment is a run of text that is either evidence (Marked) or not.
type segment struct {
	Text   string
	Marked bool
	// Kinds and Title describe the spans covering a marked run.
	Kinds string
	Title string
}

// spanRef is one finding's span on a text.
type spanRef struct {
	Start, End int
	Kind       string
	Detector   string
}

// maxSpansPerText bounds the work of highlighting one text.
const maxSpansPerText = 1000

// highlight cuts text into runs at every span boundary (offsets are Unicode
// code points, [Start, End)); runs covered by a span are marked with the kinds
// and detectors of every span covering them. Spans outside the text are
// clipped; empty ones are ignored.
func highlight(text string, spans []spanRef) []segment {
	runes := []rune(text)
	n := len(runes)
	bounds := []int{0, n}
	valid := spans[:0:0]
	for _, sp := range spans {
		s, e := max(sp.Start, 0), min(sp.End, n)
		if s >= e {
			continue
		}
		sp.Start, sp.End = s, e
		valid = append(valid, sp)
		bounds = append(bounds, s, e)
		if len(valid) == maxSpansPerText {
			break
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	out := make([]segment, 0, len(bounds))
	for i := 0; i+1 < len(bounds); i++ {
		a, b := bounds[i], bounds[i+1]
		seg := segment{Text: string(runes[a:b])}
		var kinds, titles []string
		for _, sp := range valid {
			if sp.Start <= a && sp.End >= b {
				seg.Marked = true
				k := sp.Kind
				if k == "" {
					k = "evidence"
				}
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
				titles = append(titles, sp.Detector+": "+k)
			}
		}
		seg.Kinds, seg.Title = strings.Join(kinds, " "), strings.Join(titles, "; ")
		if n := len(out); n > 0 && !seg.Marked && !out[n-1].Marked {
			out[n-1].Text += seg.Text
			continue
		}
		out = append(out, seg)
	}
	return out
}

// textView is one text of the conversation with its evidence highlighted.
type textView struct {
	Who      string
	Role     string
	Segments []segment
	Marks    int
}

// conversation lays out the interaction's messages and answer with the spans
// of every finding highlighted.
func conversation(in *events.Interaction, findings []events.Finding) []textView {
	if in == nil {
		return nil
	}
	spansOf := func(field string, msg int) []spanRef {
		var out []spanRef
		for _, f := range findings {
			for _, sp := range f.Spans {
				if sp.Field == field && (field != "prompt" || sp.Message == msg) {
					out = append(out, spanRef{Start: sp.Start, End: sp.End, Kind: sp.Kind, Detector: f.Detector})
				}
			}
		}
		return out
	}
	view := func(who, role, text string, spans []spanRef) textView {
		v := textView{Who: who, Role: role, Segments: highlight(text, spans)}
		for _, s := range v.Segments {
			if s.Marked {
				v.Marks++
			}
		}
		return v
	}
	var out []textView
	for i, m := range in.Request.Messages {
		out = append(out, view(fmt.Sprintf("%s · message %d", m.Role, i+1), m.Role, m.Content, spansOf("prompt", i)))
	}
	who := "answer"
	if in.Model != "" {
		who = "answer · " + in.Model
	}
	out = append(out, view(who, "assistant", in.Response.Content, spansOf("response", 0)))
	return out
}
