package eval

import (
	"encoding/json"
	"slices"
)

// View is one measurement of one category on one data set: which rows are
// positive, which negative (others are left out), and which findings count.
type View struct {
	File     string
	Category string
	// Positive and Negative classify a row; a row that is neither is skipped.
	Positive, Negative func(r *Row) bool
	// ResponseOnly counts only findings with evidence in the response.
	ResponseOnly bool
	// Note explains the view in the report.
	Note string
}

// labelIs and benign build the usual classifiers.
func labelIs(l string) func(*Row) bool { return func(r *Row) bool { return r.Has(l) } }
func benign(r *Row) bool               { return r.Has(LabelBenign) }
func never(*Row) bool                  { return false }

// jailbroken reads JailbreakBench's judgment from source_label.
func jailbroken(r *Row) bool {
	var sl struct {
		Jailbroken bool `json:"jailbroken"`
	}
	_ = json.Unmarshal(r.SourceLabel, &sl)
	return sl.Jailbroken
}

// Views are the measurements of the report: each category only on the files
// that annotate it (datasets README), negatives only where the file has them.
var Views = []View{
	{File: FileToxicity, Category: LabelToxicity, Positive: labelIs(LabelToxicity), Negative: benign},
	{File: FileXSTest, Category: LabelUnsafe, Positive: labelIs(LabelUnsafe), Negative: benign, Note: "harmful requests vs. safe prompts that only look unsafe"},
	{File: FileXSTest, Category: LabelToxicity, Positive: labelIs(LabelToxicity), Negative: benign, Note: "discrimination requests vs. safe prompts"},
	{File: FileJBB, Category: LabelJailbreak, Positive: labelIs(LabelJailbreak), Negative: never},
	{File: FileJBB, Category: LabelUnsafe, Positive: labelIs(LabelUnsafe), ResponseOnly: true,
		Negative: func(r *Row) bool { return !jailbroken(r) }, Note: "negatives are responses JailbreakBench judged not jailbroken"},
	{File: FileJBB, Category: LabelToxicity, Positive: labelIs(LabelToxicity), ResponseOnly: true,
		Negative: func(r *Row) bool { return !jailbroken(r) }, Note: "negatives are responses judged not jailbroken"},
	{File: FileSelfRemind, Category: LabelJailbreak, Positive: labelIs(LabelJailbreak), Negative: never},
	{File: FileInjection, Category: LabelInjection, Positive: labelIs(LabelInjection), Negative: benign, Note: "small smoke test (64 rows)"},
	{File: FilePresidio, Category: LabelPII, Positive: labelIs(LabelPII), Negative: benign, Note: "row level; entity level below"},
	{File: FileFlames, Category: LabelUnsafe, Positive: labelIs(LabelUnsafe), Negative: never, Note: "adversarial Chinese probes, recall only"},
	{File: FileFlames, Category: LabelToxicity, Positive: labelIs(LabelToxicity), Negative: never, Note: "adversarial Chinese probes, recall only"},
	{File: FileFlames, Category: LabelPII, Positive: labelIs(LabelPII), Negative: never, Note: "requests about others' data, which may contain none"},
}

// Count applies v to the rows of one split ("" for both).
func (v View) Count(rows []Row, split string) Confusion {
	var c Confusion
	for i := range rows {
		r := &rows[i]
		if split != "" && r.Split != split {
			continue
		}
		pos := v.Positive(r)
		if !pos && !v.Negative(r) {
			continue
		}
		c.Add(pos, r.Flagged(v.Category, v.ResponseOnly))
	}
	return c
}

// Combined is the injection+jailbreak measure: a row counts as caught
// when either detector flags it. Positives are the prompt_injection and
// jailbreak rows of the jailbreak and injection files; negatives are the benign
// rows of XSTest and of the injection fixtures (a different distribution from
// the positives, as the datasets README warns).
func Combined(data map[string][]Row, split string) Confusion {
	var c Confusion
	for _, f := range []string{FileJBB, FileSelfRemind, FileInjection, FileXSTest} {
		for i := range data[f] {
			r := &data[f][i]
			if split != "" && r.Split != split {
				continue
			}
			pos := r.Has(LabelInjection) || r.Has(LabelJailbreak)
			neg := r.Has(LabelBenign) && (f == FileXSTest || f == FileInjection)
			if !pos && !neg {
				continue
			}
			c.Add(pos, r.Flagged(LabelInjection, false) || r.Flagged(LabelJailbreak, false))
		}
	}
	return c
}

// Presidio entity types mapped to the pii detector's span kinds. Types the
// detector does not report are kept with an empty kind so their recall shows.
var presidioKinds = map[string]string{
	"EMAIL_ADDRESS":     "email",
	"PHONE_NUMBER":      "phone",
	"CREDIT_CARD":       "card",
	"IBAN_CODE":         "iban",
	"US_SSN":            "ssn",
	"IP_ADDRESS":        "ip",
	"PERSON":            "person",
	"STREET_ADDRESS":    "address",
	"US_DRIVER_LICENSE": "driver_license",
}

// EntityKinds in report order; the first six are the structured types.
var EntityKinds = []string{"email", "phone", "card", "iban", "ssn", "ip", "person", "address", "driver_license"}

// StructuredKinds have the 0.95/0.95 target.
var StructuredKinds = []string{"email", "phone", "card", "iban", "ssn", "ip"}

// Entity counts entity-level matches of one kind.
type Entity struct {
	Gold, GoldFound int // gold spans, and those overlapped by a prediction of the kind
	Pred, PredRight int // predicted spans, and those overlapping a gold span of the kind
}

// Entities matches the pii findings' spans against Presidio's gold spans, per
// kind: a gold span is found when a predicted span of the same kind overlaps
// it; a predicted span is right when it overlaps a gold span of its kind.
// Predicted kinds that Presidio does not annotate (cn_id, passport) count
// against precision under their own kind.
func Entities(rows []Row, split string) map[string]*Entity {
	out := map[string]*Entity{}
	get := func(k string) *Entity {
		e := out[k]
		if e == nil {
			e = &Entity{}
			out[k] = e
		}
		return e
	}
	for i := range rows {
		r := &rows[i]
		if split != "" && r.Split != split {
			continue
		}
		var sl struct {
			Spans []struct {
				Type  string `json:"entity_type"`
				Start int    `json:"start"`
				End   int    `json:"end"`
			} `json:"spans"`
		}
		_ = json.Unmarshal(r.SourceLabel, &sl)
		type span struct {
			kind       string
			start, end int
		}
		var gold, pred []span
		for _, s := range sl.Spans {
			if k, ok := presidioKinds[s.Type]; ok {
				gold = append(gold, span{k, s.Start, s.End})
			}
		}
		for _, f := range r.Findings {
			if f.Category != LabelPII {
				continue
			}
			for _, s := range f.Spans {
				if s.Field == "prompt" && s.Kind != "" {
					pred = append(pred, span{s.Kind, s.Start, s.End})
				}
			}
		}
		overlap := func(a, b span) bool { return a.kind == b.kind && a.start < b.end && b.start < a.end }
		for _, g := range gold {
			e := get(g.kind)
			e.Gold++
			if slices.ContainsFunc(pred, func(p span) bool { return overlap(p, g) }) {
				e.GoldFound++
			}
		}
		for _, p := range pred {
			e := get(p.kind)
			e.Pred++
			if slices.ContainsFunc(gold, func(g span) bool { return overlap(p, g) }) {
				e.PredRight++
			}
		}
	}
	return out
}
