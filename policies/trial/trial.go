package trial

import (
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stagegate/stagegate/policies"
)

// Schema names the version of the trial definition format.
const Schema = "stagegate.trial.v1"

// Defaults and bounds.
const (
	// DefaultPolicyPackage is the Rego package whose decision rule is evaluated.
	DefaultPolicyPackage = "stagegate"
	// BuiltinPrefix marks a policy compiled into the binary: builtin:demo,
	// builtin:standard.
	BuiltinPrefix = "builtin:"
	// MaxTokensPerRequest bounds caps.tokens_per_request.
	MaxTokensPerRequest = 1 << 24
	// MaxRetentionDays bounds data_handling.retention_days (ten years).
	MaxRetentionDays = 3650
	maxIDLen         = 64
)

// severities are the incident severities, lowest first, as events names them.
var severities = []string{"low", "medium", "high", "critical"}

// Trial is one trial definition (schema stagegate.trial.v1). YAML field names
// are the contract; README.md ("For regulators") documents each.
type Trial struct {
	// Schema is "stagegate.trial.v1" (optional; checked when present).
	Schema string `yaml:"schema" json:"schema"`
	// ID names the trial everywhere (letters, digits, '-', '_'; at most 64).
	ID string `yaml:"id" json:"id"`
	// Title is the trial's human name.
	Title string `yaml:"title" json:"title"`
	// Sponsor is the company whose model is under trial.
	Sponsor Party `yaml:"sponsor" json:"sponsor"`
	// Regulator is who oversees the trial; Contact is required.
	Regulator Party `yaml:"regulator" json:"regulator"`
	// Start and End bound the trial: the gateway refuses traffic outside
	// [Start, End).
	Start time.Time `yaml:"start" json:"start"`
	End   time.Time `yaml:"end" json:"end"`
	// Participants say who may send traffic and how users fall into cohorts.
	Participants Participants `yaml:"participants" json:"participants"`
	// Models are the models under trial.
	Models Models `yaml:"models" json:"models"`
	// Purposes are the allowed uses, as topics with keyword lists.
	Purposes Purposes `yaml:"purposes" json:"purposes"`
	// Caps are counted by the gateway; the policy sees over_quota.
	Caps Caps `yaml:"caps" json:"caps"`
	// DataHandling says what is stored and for how long.
	DataHandling DataHandling `yaml:"data_handling" json:"data_handling"`
	// RiskThresholds are, per incident category and severity, the highest
	// rate of confirmed incidents per interaction a stage may show and still
	// be promoted (0..1; 0 means none tolerated). A rollout plan that sets no
	// thresholds of its own gates on the rates above 0 (sandbox/rollout.go); a
	// confirmed critical incident trips the kill switch whatever the rates.
	RiskThresholds map[string]map[string]float64 `yaml:"risk_thresholds" json:"risk_thresholds"`
	// Policy is the policy evaluated for every request.
	Policy Policy `yaml:"policy" json:"policy"`
}

// Party is an organisation and a way to reach it.
type Party struct {
	Name    string `yaml:"name" json:"name"`
	Contact string `yaml:"contact" json:"contact"`
}

// Participants are who may send traffic: tenants and API keys (by their name in
// the sandbox configuration, never the key), and the cohorts users fall into.
type Participants struct {
	Tenants []string `yaml:"tenants" json:"tenants"`
	Keys    []string `yaml:"keys" json:"keys"`
	Cohorts []Cohort `yaml:"cohorts" json:"cohorts"`
}

// Cohort is a named group of users and how users are assigned to it: exactly
// one of Users, Percent and Attribute.
type Cohort struct {
	Name string `yaml:"name" json:"name"`
	// Users lists pseudonymous user ids.
	Users []string `yaml:"users" json:"users,omitempty"`
	// Percent of users, by a hash of the user id (0 < percent <= 100). Percent
	// cohorts take consecutive hash ranges in the order listed.
	Percent float64 `yaml:"percent" json:"percent,omitempty"`
	// Attribute assigns users whose API key carries the attribute with one of
	// the values.
	Attribute *AttributeMatch `yaml:"attribute" json:"attribute,omitempty"`
}

// AttributeMatch selects users by a caller attribute.
type AttributeMatch struct {
	Name   string   `yaml:"name" json:"name"`
	Values []string `yaml:"values" json:"values"`
}

// Models are the models under trial, by their names in the sandbox.
type Models struct {
	// LogicalModel is the model name clients use (default: the trial id).
	LogicalModel string `yaml:"logical_model" json:"logical_model"`
	Candidate    string `yaml:"candidate" json:"candidate"`
	Baseline     string `yaml:"baseline" json:"baseline"`
}

// Purposes are the topics of the trial: keyword lists (English and Chinese) the
// gateway matches in prompts, and which of them are allowed uses.
type Purposes struct {
	// Allowed names the topics that are allowed uses (empty: any).
	Allowed []string `yaml:"allowed" json:"allowed"`
	// Topics are keyword lists by topic name; the policy sees matched names.
	Topics map[string][]string `yaml:"topics" json:"topics"`
}

// Caps bound use; 0 means no cap.
type Caps struct {
	RequestsPerUserPerDay int `yaml:"requests_per_user_per_day" json:"requests_per_user_per_day"`
	TokensPerRequest      int `yaml:"tokens_per_request" json:"tokens_per_request"`
	ConcurrentStreams     int `yaml:"concurrent_streams" json:"concurrent_streams"`
}

// DataHandling says what is stored.
type DataHandling struct {
	// RedactPII stores every interaction with PII redacted.
	RedactPII bool `yaml:"redact_pii" json:"redact_pii"`
	// RetentionDays keeps interactions this long (0: the sandbox's default).
	RetentionDays int `yaml:"retention_days" json:"retention_days"`
}

// Policy names the trial's policy: exactly one of Dir and Bundle.
type Policy struct {
	// Dir is a policy folder on the sandbox host, or builtin:<name>.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Bundle is the URL of an OPA bundle served over HTTP(S).
	Bundle string `yaml:"bundle" json:"bundle,omitempty"`
	// Package is the Rego package of the decision rule (default stagegate).
	Package string `yaml:"package" json:"package"`
	// ContentAccess lets the policy read the raw message text (input.content).
	// Slower: such decisions are rarely memoised.
	ContentAccess bool `yaml:"content_access" json:"content_access"`
	// FailMode is what the gateway does when no decision can be made: open or
	// closed (default).
	FailMode string `yaml:"fail_mode" json:"fail_mode"`
}

// WithDefaults fills unset fields.
func (t Trial) WithDefaults() Trial {
	if t.Schema == "" {
		t.Schema = Schema
	}
	if t.Models.LogicalModel == "" {
		t.Models.LogicalModel = t.ID
	}
	if t.Policy.Package == "" {
		t.Policy.Package = DefaultPolicyPackage
	}
	if t.Policy.FailMode == "" {
		t.Policy.FailMode = policies.FailClosed
	}
	return t
}

// Query is the decision rule of the trial's policy.
func (t *Trial) Query() string { return "data." + t.Policy.Package + ".decision" }

// Active returns nil when now is inside [Start, End), else an ErrNotActive
// saying when the trial starts or ended. The gateway calls it per request.
func (t *Trial) Active(now time.Time) error {
	switch {
	case now.Before(t.Start):
		return fmt.Errorf("%w: trial %s starts at %s", ErrNotActive, t.ID, t.Start.UTC().Format(time.RFC3339))
	case !now.Before(t.End):
		return fmt.Errorf("%w: trial %s ended at %s", ErrNotActive, t.ID, t.End.UTC().Format(time.RFC3339))
	}
	return nil
}

// Topics are the keyword lists for policies.NewExtractor.
func (t *Trial) Topics() policies.Topics { return policies.Topics(t.Purposes.Topics) }

// ReloaderConfig is where the trial's policy comes from, for
// policies.NewReloader: a built-in policy (fixed), a folder (watched) or a
// bundle (pulled).
func (t *Trial) ReloaderConfig() (policies.ReloaderConfig, error) {
	c := policies.ReloaderConfig{Query: t.Query()}
	switch {
	case t.Policy.Bundle != "":
		c.BundleURL = t.Policy.Bundle
	case strings.HasPrefix(t.Policy.Dir, BuiltinPrefix):
		name := strings.TrimPrefix(t.Policy.Dir, BuiltinPrefix)
		sub, err := fs.Sub(policies.Builtin(), "rego/"+name)
		if err != nil {
			return c, fmt.Errorf("%w: built-in policy %q: %w", ErrInvalid, name, err)
		}
		if _, err := fs.Stat(sub, "."); err != nil {
			return c, fmt.Errorf("%w: built-in policy %q does not exist", ErrInvalid, name)
		}
		c.FS = sub
	default:
		c.Dir = t.Policy.Dir
	}
	return c, nil
}

// problem is one validation finding at a field path (e.g. caps.tokens_per_request).
type problem struct {
	path string
	msg  string
}

// check lists every rule t breaks.
func (t *Trial) check() []problem {
	var ps []problem
	add := func(path, format string, args ...any) { ps = append(ps, problem{path, fmt.Sprintf(format, args...)}) }
	if t.Schema != Schema {
		add("schema", "%q: want %q", t.Schema, Schema)
	}
	if err := checkToken(t.ID); err != nil {
		add("id", "%v", err)
	}
	if strings.TrimSpace(t.Title) == "" {
		add("title", "required")
	}
	if strings.TrimSpace(t.Sponsor.Name) == "" {
		add("sponsor.name", "required")
	}
	if strings.TrimSpace(t.Regulator.Name) == "" {
		add("regulator.name", "required")
	}
	if strings.TrimSpace(t.Regulator.Contact) == "" {
		add("regulator.contact", "required (how the sponsor reaches the regulator)")
	}
	switch {
	case t.Start.IsZero():
		add("start", "required (RFC 3339, e.g. 2025-06-01T00:00:00Z)")
	case t.End.IsZero():
		add("end", "required (RFC 3339, e.g. 2025-12-31T23:59:59Z)")
	case !t.End.After(t.Start):
		add("end", "%s is not after start %s", t.End.Format(time.RFC3339), t.Start.Format(time.RFC3339))
	}
	t.checkParticipants(add)
	if t.Models.LogicalModel != "" {
		if err := checkToken(t.Models.LogicalModel); err != nil {
			add("models.logical_model", "%v", err)
		}
	}
	for _, m := range []struct{ path, name string }{{"models.candidate", t.Models.Candidate}, {"models.baseline", t.Models.Baseline}} {
		if err := checkToken(m.name); err != nil {
			add(m.path, "%v", err)
		}
	}
	if t.Models.Candidate != "" && t.Models.Candidate == t.Models.Baseline {
		add("models.baseline", "must differ from the candidate")
	}
	t.checkPurposes(add)
	for _, c := range []struct {
		path string
		v    int
		max  int
	}{
		{"caps.requests_per_user_per_day", t.Caps.RequestsPerUserPerDay, 1 << 30},
		{"caps.tokens_per_request", t.Caps.TokensPerRequest, MaxTokensPerRequest},
		{"caps.concurrent_streams", t.Caps.ConcurrentStreams, 1 << 16},
		{"data_handling.retention_days", t.DataHandling.RetentionDays, MaxRetentionDays},
	} {
		if c.v < 0 || c.v > c.max {
			add(c.path, "%d is not in 0..%d (0 means no cap, or the default)", c.v, c.max)
		}
	}
	for _, cat := range sortedKeys(t.RiskThresholds) {
		path := "risk_thresholds." + cat
		if err := checkToken(cat); err != nil {
			add(path, "category: %v", err)
		}
		for _, sev := range sortedKeys(t.RiskThresholds[cat]) {
			if !slices.Contains(severities, sev) {
				add(path+"."+sev, "severity %q: want one of %s", sev, strings.Join(severities, ", "))
			}
			if v := t.RiskThresholds[cat][sev]; v < 0 || v > 1 || math.IsNaN(v) {
				add(path+"."+sev, "%v is not a rate in 0..1", v)
			}
		}
	}
	t.checkPolicy(add)
	return ps
}

func (t *Trial) checkParticipants(add func(path, format string, args ...any)) {
	if len(t.Participants.Tenants) == 0 && len(t.Participants.Keys) == 0 {
		add("participants", "name at least one tenant or API key")
	}
	for i, tn := range t.Participants.Tenants {
		if strings.TrimSpace(tn) == "" {
			add(fmt.Sprintf("participants.tenants[%d]", i), "empty")
		}
	}
	for i, k := range t.Participants.Keys {
		if strings.TrimSpace(k) == "" {
			add(fmt.Sprintf("participants.keys[%d]", i), "empty")
		}
	}
	names := map[string]bool{}
	percent := 0.0
	for i, c := range t.Participants.Cohorts {
		at := fmt.Sprintf("participants.cohorts[%d]", i)
		if err := checkToken(c.Name); err != nil {
			add(at+".name", "%v", err)
		} else if names[c.Name] {
			add(at+".name", "cohort %q defined twice", c.Name)
		}
		names[c.Name] = true
		ways := 0
		if c.Users != nil {
			ways++
			if len(c.Users) == 0 {
				add(at+".users", "empty list")
			}
		}
		if c.Percent != 0 {
			ways++
			if c.Percent < 0 || c.Percent > 100 || math.IsNaN(c.Percent) {
				add(at+".percent", "%v is not in (0, 100]", c.Percent)
			}
			percent += c.Percent
		}
		if c.Attribute != nil {
			ways++
			if strings.TrimSpace(c.Attribute.Name) == "" {
				add(at+".attribute.name", "required")
			}
			if len(c.Attribute.Values) == 0 {
				add(at+".attribute.values", "name at least one value")
			}
		}
		if ways != 1 {
			add(at, "assign users by exactly one of users, percent and attribute (got %d)", ways)
		}
	}
	if percent > 100 {
		add("participants.cohorts", "percent cohorts add up to %v, more than 100", percent)
	}
}

func (t *Trial) checkPurposes(add func(path, format string, args ...any)) {
	report := func(path string, err error) {
		for _, line := range strings.Split(err.Error(), "\n") {
			add(path, "%s", strings.TrimPrefix(line, policies.ErrConfig.Error()+": "))
		}
	}
	// Each topic on its own, so a problem names its topic's line; then all
	// together, for the limits on the whole set.
	bad := false
	for _, name := range sortedKeys(t.Purposes.Topics) {
		if _, err := policies.NewExtractor(policies.Topics{name: t.Purposes.Topics[name]}); err != nil {
			report("purposes.topics."+name, err)
			bad = true
		}
	}
	if !bad {
		if _, err := policies.NewExtractor(t.Topics()); err != nil {
			report("purposes.topics", err)
		}
	}
	for i, a := range t.Purposes.Allowed {
		if _, ok := t.Purposes.Topics[a]; !ok {
			add(fmt.Sprintf("purposes.allowed[%d]", i), "topic %q has no keyword list under purposes.topics", a)
		}
	}
}

func (t *Trial) checkPolicy(add func(path, format string, args ...any)) {
	p := t.Policy
	switch {
	case p.Dir == "" && p.Bundle == "":
		add("policy", "set dir (a folder, or builtin:<name>) or bundle (a URL)")
	case p.Dir != "" && p.Bundle != "":
		add("policy", "set dir or bundle, not both")
	case p.Bundle != "":
		if u, err := url.Parse(p.Bundle); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("policy.bundle", "%q: want an http(s) URL", p.Bundle)
		}
	case strings.HasPrefix(p.Dir, BuiltinPrefix):
		name := strings.TrimPrefix(p.Dir, BuiltinPrefix)
		if _, err := fs.Stat(policies.Builtin(), "rego/"+name); err != nil || name == "" || name == "lib" {
			add("policy.dir", "no built-in policy %q (try builtin:demo or builtin:standard)", name)
		}
	}
	if p.Package != "" {
		if ref, err := ast.ParseRef("data." + p.Package); err != nil || !ref.IsGround() || strings.ContainsAny(p.Package, "[] ") {
			add("policy.package", "%q is not a Rego package name such as stagegate or trials.clinic", p.Package)
		}
	}
	if p.FailMode != policies.FailOpen && p.FailMode != policies.FailClosed {
		add("policy.fail_mode", "%q: want open or closed", p.FailMode)
	}
}

// checkToken accepts 1..64 letters, digits, '-' and '_'.
func checkToken(s string) error {
	if s == "" {
		return fmt.Errorf("required")
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("%q is longer than %d characters", s, maxIDLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q: use letters, digits, '-' and '_' only", s)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
