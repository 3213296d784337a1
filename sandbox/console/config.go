package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults of Config.
const (
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultLoginAttempts failed sign-ins per client and name per LoginWindow.
	DefaultLoginAttempts = 10
	// DefaultLoginWindow is the window of the failed sign-in limit.
	DefaultLoginWindow = 15 * time.Minute
	// DefaultConfidence is the confidence of the report's intervals.
	DefaultConfidence = 0.95
	// maxFormBytes bounds a posted form or JSON body.
	maxFormBytes = 64 << 10
)

// Config configures the console.
type Config struct {
	// SessionTTL is how long a sign-in lasts (default 12h, at most 30 days).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SecureCookies marks cookies Secure (set it when the admin address is
	// served over TLS or behind a TLS proxy). Requests over TLS always get
	// Secure cookies.
	SecureCookies bool `yaml:"secure_cookies"`
	// ProxyUserHeader names a header (e.g. X-Forwarded-User) carrying the user
	// a trusted reverse proxy authenticated; empty turns proxy sign-in off. The
	// user must exist (stagegate user add); their role and trials come from the
	// store.
	ProxyUserHeader string `yaml:"proxy_user_header"`
	// TrustedProxies are the addresses (CIDR) allowed to send ProxyUserHeader
	// (default loopback only). From any other address the header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// LoginAttempts failed sign-ins per client and name within LoginWindow
	// before sign-in is refused for the rest of the window.
	LoginAttempts int           `yaml:"login_attempts"`
	LoginWindow   time.Duration `yaml:"login_window"`
	// Confidence of the confirmed-incident rate intervals in reports (0.95).
	Confidence float64 `yaml:"confidence"`
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	}
	if c.LoginAttempts == 0 {
		c.LoginAttempts = DefaultLoginAttempts
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = DefaultLoginWindow
	}
	if c.Confidence == 0 {
		c.Confidence = DefaultConfidence
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("%w: session_ttl %s: want 1m to 720h", ErrConfig, c.SessionTTL))
	}
	if h := c.ProxyUserHeader; h != "" && (strings.ContainsAny(h, " :\r\n") || strings.EqualFold(h, "Authorization") || strings.EqualFold(h, "Cookie")) {
		errs = append(errs, fmt.Errorf("%w: proxy_user_header %q is not a usable header name", ErrConfig, h))
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("%w: trusted_proxies %q: %v", ErrConfig, p, err))
		}
	}
	if c.LoginAttempts < 1 || c.LoginWindow < time.Second {
		errs = append(errs, fmt.Errorf("%w: login_attempts must be at least 1 and login_window at least 1s", ErrConfig))
	}
	if !(c.Confidence > 0 && c.Confidence < 1) {
		errs = append(errs, fmt.Errorf("%w: confidence %v: want a value in (0, 1)", ErrConfig, c.Confidence))
	}
	return errors.Join(errs...)
}

// Store is what the console needs of the incident store (*incidents.SQLiteStore).
type Store interface {
	Incident(ctx context.Context, id string) (*incidents.Incident, error)
	Interaction(ctx context.Context, id string) (*events.Interaction, error)
	Queue(ctx context.Context, f incidents.QueueFilter) (*incidents.Queue, error)
	IncidentWorkflow(ctx context.Context, id string) (*incidents.Workflow, error)
	IncidentHistory(ctx context.Context, id string) (*incidents.History, error)
	Act(ctx context.Context, id string, a incidents.Action) (*incidents.Incident, error)
	Comment(ctx context.Context, id, author, body string) (incidents.IncidentComment, error)
	SetLabels(ctx context.Context, id, actor string, add, remove []string) ([]string, error)
	Authenticate(ctx context.Context, name, password, remote string) (*incidents.User, error)
	NewSession(ctx context.Context, name, via, remote string, ttl time.Duration) (incidents.Session, error)
	SessionUser(ctx context.Context, token string) (*incidents.Session, *incidents.User, error)
	EndSession(ctx context.Context, token string) error
	GetUser(ctx context.Context, name string) (*incidents.User, error)
	TrialReport(ctx context.Context, o incidents.ReportOptions) (*incidents.Report, error)
	TrialRevision(ctx context.Context, trial string, n int) (incidents.TrialRevision, error)
	Trials(ctx context.Context) ([]incidents.TrialRevision, error)
	TrialRules(ctx context.Context, trial string) (incidents.TrialRules, error)
	SetTrialRules(ctx context.Context, trial string, r incidents.TrialRules, actor, reason string) error
	RolloutEvidence(ctx context.Context, trial, model string, since time.Time) (*incidents.RolloutEvidence, error)
	RatePoints(ctx context.Context, trial string, since, until time.Time, bucket time.Duration) ([]incidents.RatePoint, error)
	VerifyAudit(ctx context.Context) (incidents.AuditVerification, error)
	AuditEntries(ctx context.Context, f incidents.AuditFilter) ([]incidents.AuditEntry, error)
	LegalHolds(ctx context.Context) ([]incidents.LegalHold, error)
}

var _ Store = (*incidents.SQLiteStore)(nil)

// Deps are what the console takes from the sandbox.
type Deps struct {
	// Store is the incident store (required).
	Store Store
	// AdminTokenSHA256 is the SHA-256 of the admin bearer token, which acts as
	// the admin role on the review API; zero turns that off.
	AdminTokenSHA256 [sha256.Size]byte
	// Rollout returns a trial's rollout state (deploy.ErrNotFound when it has
	// none); nil when no controller runs in this process.
	Rollout func(ctx context.Context, trial string) (*deploy.State, error)
	// Nudge wakes the rollout controller after a verdict, so a kill switch acts
	// at once; nil: nothing to wake.
	Nudge func()
	// Experiments reports a trial's policy experiments (the analysis as text, as
	// `stagegate experiment report` prints it); nil: no experiments panel.
	Experiments func(ctx context.Context, trial string) ([]ExperimentView, error)
	// Clock; nil is the wall clock.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
}

// ExperimentView is one policy experiment on the trial page.
type ExperimentView struct {
	Name   string
	Status string
	// Report is the analysis: per-arm outcomes with intervals, the rule, the
	// sample-ratio check and the one-line conclusion.
	Report string
}
