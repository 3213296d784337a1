package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/stagegate/stagegate/events"
)

// Burst scopes: whose repeated findings are grouped.
const (
	BurstScopeModel = "model"
	BurstScopeUser  = "user"
)

// Bounds of BurstRule.
const (
	MinBurstWindow = time.Second
	MaxBurstWindow = 7 * 24 * time.Hour
	// MaxBurstFindings caps BurstRule.MaxFindings.
	MaxBurstFindings = 1000
)

// BurstRule says when repeated findings become one aggregate incident. Fixed
// windows of length Window (aligned to the Unix epoch) are counted per trial,
// category and subject (the model, and the user); the first Threshold
// interactions of a window get incidents of their own, every later one joins
// the window's single aggregate incident instead.
type BurstRule struct {
	// Window is the length of a counting window.
	Window time.Duration
	// Threshold is how many interactions of one subject and category in one
	// window are opened as incidents of their own.
	Threshold int
	// MaxFindings bounds the findings stored on one aggregate incident; later
	// members are still counted (in the title) but their findings are not kept
	// there (they remain on the FINDINGS stream).
	MaxFindings int
}

// Validate reports every problem of r at once.
func (r BurstRule) Validate() error {
	var errs []error
	if r.Window < MinBurstWindow || r.Window > MaxBurstWindow {
		errs = append(errs, fmt.Errorf("%w: burst window %s not in [%s,%s]", ErrInvalid, r.Window, MinBurstWindow, MaxBurstWindow))
	}
	if r.Threshold < 1 {
		errs = append(errs, fmt.Errorf("%w: burst threshold %d below 1", ErrInvalid, r.Threshold))
	}
	if r.MaxFindings < 1 || r.MaxFindings > MaxBurstFindings {
		errs = append(errs, fmt.Errorf("%w: burst max findings %d not in [1,%d]", ErrInvalid, r.MaxFindings, MaxBurstFindings))
	}
	return errors.Join(errs...)
}

// BurstKey identifies one counting window.
type BurstKey struct {
	Trial, Scope, Subject, Category string
	WindowStart                     time.Time
}

// ID is the key's deterministic id.
func (k BurstKey) ID() string {
	sum := sha256.Sum256([]byte("burst\x00" + k.Trial + "\x00" + k.Scope + "\x00" + k.Subject + "\x00" + k.Category +
		"\x00" + strconv.FormatInt(k.WindowStart.UnixNano(), 10)))
	return hex.EncodeToString(sum[:12])
}

// AggregateIncidentID is the id of a burst's aggregate incident; its
// InteractionID is "burst:" + the key's ID.
func AggregateIncidentID(k BurstKey) string {
	sum := sha256.Sum256([]byte("aggregate\x00" + k.ID()))
	return "inc_" + hex.EncodeToString(sum[:10])
}

// AggregateResult is one aggregate incident an interaction joined.
type AggregateResult struct {
	Key      BurstKey
	Incident *Incident
	// Created is true only for the call that inserted the incident.
	Created bool
	// Count is how many interactions the window holds so far.
	Count int
}

// Routing says where an interaction's findings went.
type Routing struct {
	// Individual are the findings to open as the interaction's own incident
	// (with OpenIncident); empty when all joined aggregates.
	Individual []events.Finding
	// Aggregates are the aggregate incidents the other findings joined.
	Aggregates []AggregateResult
}

// Correlator groups repeated findings into aggregate incidents. SQLiteStore
// implements it; the runner uses it when a BurstRule is configured.
type Correlator interface {
	// Correlate counts the interaction in the windows of its model and its
	// user for each category of its findings and routes the findings: those of
	// a category over the rule's threshold join that window's aggregate
	// incident, the rest are returned for OpenIncident. It is idempotent by
	// interaction id: a redelivery is routed as the first delivery was and
	// counted once. The window is taken from the interaction's StartedAt (the
	// store's clock when it is zero).
	Correlate(ctx context.Context, in *events.Interaction, findings []events.Finding, rule BurstRule) (Routing, error)
}

var _ Correlator = (*SQLiteStore)(nil)

// Burst statements, written with "?" placeholders and bound per dialect.
const (
	sqlInsertBurst = `INSERT INTO burst_windows (burst_id, trial, scope, subject, category, window_start, count, incident_id)
		VALUES (?, ?, ?, ?, ?, ?, 0, '') ON CONFLICT (burst_id) DO NOTHING`
	sqlSelectBurstCount = `SELECT count FROM burst_windows WHERE burst_id = ?`
	sqlInsertMember     = `INSERT INTO burst_members (burst_id, interaction_id, ordinal) VALUES (?, ?, ?)
		ON CONFLICT (burst_id, interaction_id) DO NOTHING`
	sqlSelectMember      = `SELECT ordinal FROM burst_members WHERE burst_id = ? AND interaction_id = ?`
	sqlBumpBurst         = `UPDATE burst_windows SET count = count + 1 WHERE burst_id = ?`
	sqlSetBurstIncident  = `UPDATE burst_windows SET incident_id = ? WHERE burst_id = ?`
	sqlCountFindings     = `SELECT COUNT(*) FROM findings WHERE incident_id = ?`
	sqlUpdateAggregate   = `UPDATE incidents SET severity = ?, title = ?, updated_at = ? WHERE id = ?`
	sqlInsertAggregateIn = `INSERT INTO incidents (` + incidentColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
)

// Correlate implements Correlator.
func (s *sqlStore) Correlate(ctx context.Context, in *events.Interaction, findings []events.Finding, rule BurstRule) (Routing, error) {
	if err := errors.Join(checkInteraction(in), rule.Validate()); err != nil {
		return Routing{}, err
	}
	if err := checkFindings(in, findings); err != nil {
		return Routing{}, err
	}
	at := in.StartedAt
	if at.IsZero() {
		at = s.clk.Now()
	}
	start := at.UTC().Truncate(rule.Window)
	model := interactionModel(in)
	now := s.clk.Now().UTC()

	// Categories in a fixed order so every delivery routes the same way.
	var cats []string
	for i := range findings {
		if !slices.Contains(cats, findings[i].Category) {
			cats = append(cats, findings[i].Category)
		}
	}
	slices.Sort(cats)

	var out Routing
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = Routing{}
		for _, cat := range cats {
			var fs []events.Finding
			for i := range findings {
				if findings[i].Category == cat {
					fs = append(fs, findings[i])
				}
			}
			keys := []BurstKey{{Trial: in.Trial, Scope: BurstScopeModel, Subject: model, Category: cat, WindowStart: start}}
			if in.User != "" {
				keys = append(keys, BurstKey{Trial: in.Trial, Scope: BurstScopeUser, Subject: in.User, Category: cat, WindowStart: start})
			}
			routed := false
			for _, k := range keys {
				ordinal, count, err := s.countMember(ctx, tx, k, in.ID)
				if err != nil {
					return err
				}
				if routed || ordinal <= rule.Threshold {
					continue
				}
				routed = true
				res, err := s.joinAggregate(ctx, tx, k, model, fs, count, rule, now)
				if err != nil {
					return err
				}
				out.Aggregates = append(out.Aggregates, res)
			}
			if !routed {
				out.Individual = append(out.Individual, fs...)
			}
		}
		return nil
	})
	if err != nil {
		return Routing{}, err
	}
	return out, nil
}

// countMember records interaction id in window k (once) and returns its
// ordinal in the window and the window's count.
func (s *sqlStore) countMember(ctx context.Context, tx *sql.Tx, k BurstKey, id string) (ordinal, count int, err error) {
	b := s.st.d.bind
	bid := k.ID()
	if _, err := tx.ExecContext(ctx, b(sqlInsertBurst), bid, k.Trial, k.Scope, k.Subject, k.Category, k.WindowStart.UnixNano()); err != nil {
		return 0, 0, fmt.Errorf("insert burst window: %w", err)
	}
	if err := tx.QueryRowContext(ctx, b(sqlSelectBurstCount+s.st.d.forUpdate), bid).Scan(&count); err != nil {
		return 0, 0, fmt.Errorf("read burst window: %w", err)
	}
	res, err := tx.ExecContext(ctx, b(sqlInsertMember), bid, id, count+1)
	if err != nil {
		return 0, 0, fmt.Errorf("insert burst member: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, 0, fmt.Errorf("insert burst member: %w", err)
	} else if n == 1 {
		if _, err := tx.ExecContext(ctx, b(sqlBumpBurst), bid); err != nil {
			return 0, 0, fmt.Errorf("count burst member: %w", err)
		}
		count++
	}
	if err := tx.QueryRowContext(ctx, b(sqlSelectMember), bid, id).Scan(&ordinal); err != nil {
		return 0, 0, fmt.Errorf("read burst member: %w", err)
	}
	return ordinal, count, nil
}

// joinAggregate opens (once) the aggregate incident of window k and adds fs to
// it while it holds fewer than rule.MaxFindings findings.
func (s *sqlStore) joinAggregate(ctx context.Context, tx *sql.Tx, k BurstKey, model string, fs []events.Finding, count int, rule BurstRule, now time.Time) (AggregateResult, error) {
	b := s.st.d.bind
	id := AggregateIncidentID(k)
	if k.Scope == BurstScopeModel {
		model = k.Subject
	}
	sev := fs[worst(fs)].Severity
	title := burstTitle(k, count, rule.Window)
	res, err := tx.ExecContext(ctx, b(sqlInsertAggregateIn), id, "burst:"+k.ID(), k.Trial, model, k.Category, sev,
		StatusOpen, title, now.UnixNano(), now.UnixNano())
	if err != nil {
		return AggregateResult{}, fmt.Errorf("insert aggregate incident %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return AggregateResult{}, fmt.Errorf("insert aggregate incident %s: %w", id, err)
	}
	created := n == 1
	if _, err := tx.ExecContext(ctx, b(sqlSetBurstIncident), id, k.ID()); err != nil {
		return AggregateResult{}, fmt.Errorf("link burst window: %w", err)
	}
	var stored int
	if err := tx.QueryRowContext(ctx, b(sqlCountFindings), id).Scan(&stored); err != nil {
		return AggregateResult{}, fmt.Errorf("count aggregate findings: %w", err)
	}
	if room := rule.MaxFindings - stored; room > 0 {
		if _, err := s.insertFindings(ctx, tx, id, fs[:min(room, len(fs))]); err != nil {
			return AggregateResult{}, err
		}
	}
	cur, err := scanIncident(tx.QueryRowContext(ctx, s.st.selectIncidentForUpdate, id))
	if err != nil {
		return AggregateResult{}, fmt.Errorf("read aggregate incident %s: %w", id, err)
	}
	if events.SeverityRank(sev) < events.SeverityRank(cur.Severity) {
		sev = cur.Severity // severity only goes up
	}
	if _, err := tx.ExecContext(ctx, b(sqlUpdateAggregate), sev, title, now.UnixNano(), id); err != nil {
		return AggregateResult{}, fmt.Errorf("update aggregate incident %s: %w", id, err)
	}
	inc, err := s.loadIncident(ctx, tx, id)
	if err != nil {
		return AggregateResult{}, err
	}
	return AggregateResult{Key: k, Incident: inc, Created: created, Count: count}, nil
}

// burstTitle describes a window, e.g. "burst: 37 interactions with pii findings
// from model demo-candidate in 10m0s from 2026-11-28T10:00:00Z".
func burstTitle(k BurstKey, count int, window time.Duration) string {
	return truncateRunes(fmt.Sprintf("burst: %d interactions with %s findings from %s %s in %s from %s",
		count, k.Category, k.Scope, k.Subject, window, k.WindowStart.UTC().Format(time.RFC3339)), MaxTitleRunes)
}
