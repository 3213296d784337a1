package incidents

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
)

func TestExperimentLifecycle(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "e.db"), clk)
	ctx := context.Background()

	e, created, err := s.PutExperiment(ctx, "notice", "t1", "alice", []byte("name: notice\n"))
	if err != nil || !created || e.Status != ExperimentDraft || e.Revision != 1 || !strings.HasPrefix(e.Digest, "sha256:") {
		t.Fatalf("put: %+v %v %v", e, created, err)
	}
	if e2, created, err := s.PutExperiment(ctx, "notice", "t1", "alice", []byte("name: notice\n")); err != nil || created || e2.Revision != 1 {
		t.Errorf("same definition again: %+v %v %v", e2, created, err)
	}
	clk.Advance(time.Minute)
	if e2, created, err := s.PutExperiment(ctx, "notice", "t1", "bob", []byte("name: notice\n# v2\n")); err != nil || !created || e2.Revision != 2 {
		t.Errorf("changed draft: %+v %v %v", e2, created, err)
	}
	for _, bad := range []struct {
		name, trial, actor string
		src                []byte
	}{{"no spaces", "t1", "a", []byte("x")}, {"n", "", "a", []byte("x")}, {"n", "t1", "", []byte("x")}, {"n", "t1", "a", nil}} {
		if _, _, err := s.PutExperiment(ctx, bad.name, bad.trial, bad.actor, bad.src); !errors.Is(err, ErrInvalid) {
			t.Errorf("put %+v: %v, want ErrInvalid", bad, err)
		}
	}

	steps := []struct {
		name    string
		ch      ExperimentChange
		wantErr error
		status  string
	}{
		{"stop a draft", ExperimentChange{Name: "notice", From: ExperimentDraft, To: ExperimentStopped, Actor: "alice", Cause: StopByHand}, ErrTransition, ExperimentDraft},
		{"conclude a draft", ExperimentChange{Name: "notice", From: ExperimentDraft, To: ExperimentConcluded, Actor: "alice"}, ErrTransition, ExperimentDraft},
		{"start", ExperimentChange{Name: "notice", From: ExperimentDraft, To: ExperimentRunning, Actor: "alice", Reason: "go"}, nil, ExperimentRunning},
		{"start again", ExperimentChange{Name: "notice", From: ExperimentDraft, To: ExperimentRunning, Actor: "alice"}, ErrTransition, ExperimentRunning},
		{"stop without cause", ExperimentChange{Name: "notice", From: ExperimentRunning, To: ExperimentStopped, Actor: "alice"}, ErrInvalid, ExperimentRunning},
		{"stop by rule", ExperimentChange{Name: "notice", From: ExperimentRunning, To: ExperimentStopped, Actor: "controller", Cause: StopByRule, Reason: "guard-rail 1 crossed", Detail: []int{1}}, nil, ExperimentStopped},
		{"conclude", ExperimentChange{Name: "notice", From: ExperimentStopped, To: ExperimentConcluded, Actor: "alice", Conclusion: "Not enough evidence."}, nil, ExperimentConcluded},
		{"unknown", ExperimentChange{Name: "nope", From: ExperimentDraft, To: ExperimentRunning, Actor: "alice"}, ErrNotFound, ""},
	}
	for _, st := range steps {
		clk.Advance(time.Minute)
		got, err := s.TransitionExperiment(ctx, st.ch)
		if !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
		}
		if st.status == "" {
			continue
		}
		cur, err := s.Experiment(ctx, "notice")
		if err != nil || cur.Status != st.status {
			t.Fatalf("%s: status %q (%v), want %q", st.name, cur.Status, err, st.status)
		}
		if err == nil && st.wantErr == nil && got.Status != st.status {
			t.Errorf("%s: returned %q", st.name, got.Status)
		}
	}
	e, err = s.Experiment(ctx, "notice")
	if err != nil || e.StartedBy != "alice" || e.StopCause != StopByRule || e.StopReason != "guard-rail 1 crossed" || e.StoppedBy != "controller" ||
		e.Conclusion != "Not enough evidence." || !e.StartedAt.Equal(t0.Add(4*time.Minute)) || e.Source != "name: notice\n# v2\n" {
		t.Errorf("stored %+v", e)
	}
	if _, _, err := s.PutExperiment(ctx, "notice", "t1", "alice", []byte("changed")); !errors.Is(err, ErrConflict) {
		t.Errorf("re-apply a concluded experiment: %v", err)
	}
	hist, err := s.ExperimentTransitions(ctx, "notice")
	if err != nil || len(hist) != 3 || hist[0].To != ExperimentRunning || hist[1].Cause != StopByRule || hist[2].To != ExperimentConcluded {
		t.Errorf("transitions %+v %v", hist, err)
	}
	audit, err := s.AuditEntries(ctx, AuditFilter{ActionPrefix: "experiment."})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	slices.Reverse(actions)
	if strings.Join(actions, ",") != "experiment.apply,experiment.apply,experiment.start,experiment.stop,experiment.conclude" || audit[1].Reason != "guard-rail 1 crossed" || audit[1].Trial != "t1" {
		t.Errorf("audit %v", actions)
	}
	if v, err := s.VerifyAudit(ctx); err != nil || !v.OK {
		t.Errorf("audit chain %+v %v", v, err)
	}
	list, err := s.Experiments(ctx, "t1")
	if err != nil || len(list) != 1 || list[0].Source != "" {
		t.Errorf("list %+v %v", list, err)
	}
}

func TestOneRunningExperimentPerTrial(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "e.db"), clock.NewFake(t0))
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, _, err := s.PutExperiment(ctx, n, "t1", "alice", []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	start := func(n string) error {
		_, err := s.TransitionExperiment(ctx, ExperimentChange{Name: n, From: ExperimentDraft, To: ExperimentRunning, Actor: "alice"})
		return err
	}
	if err := start("a"); err != nil {
		t.Fatal(err)
	}
	if err := start("b"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "a is already running") {
		t.Errorf("second running experiment: %v", err)
	}
	if _, err := s.TransitionExperiment(ctx, ExperimentChange{Name: "a", From: ExperimentRunning, To: ExperimentStopped, Actor: "alice", Cause: StopByHand, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := start("b"); err != nil {
		t.Errorf("after the first stopped: %v", err)
	}
}

func TestExperimentObservations(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openTest(t, filepath.Join(t.TempDir(), "e.db"), clk)
	ctx := context.Background()
	rec := func(id, exp, arm, route string, at time.Time) {
		in := interaction(id, "t1")
		in.StartedAt, in.User, in.Route = at, "u_"+id, route
		in.Latency.TotalMS = 42
		in.Decision.Experiment, in.Decision.Arm, in.Decision.VariantRevision = exp, arm, "sha256:"+arm
		if err := s.RecordInteraction(ctx, in); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	rec("i1", "notice", "control", events.RouteBaseline, t0)
	rec("i2", "notice", "treat", events.RouteCandidate, t0.Add(time.Minute))
	rec("i3", "other", "treat", events.RouteCandidate, t0.Add(time.Minute))
	rec("i4", "notice", "treat", events.RouteShadow, t0.Add(time.Minute)) // a shadow copy: left out
	rec("i5", "", "", events.RouteBaseline, t0.Add(time.Minute))
	rec("i6", "notice", "treat", events.RouteCandidate, t0.Add(time.Hour))     // after To
	rec("i0", "notice", "control", events.RouteBaseline, t0.Add(-time.Minute)) // before From

	obs, err := s.ExperimentObservations(ctx, ObservationQuery{Trial: "t1", Experiment: "notice", From: t0, To: t0.Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 2 || obs[0].InteractionID != "i1" || obs[1].InteractionID != "i2" || obs[1].Arm != "treat" ||
		obs[1].VariantRevision != "sha256:treat" || obs[1].User != "u_i2" || obs[1].LatencyMS != 42 || obs[1].Status != events.StatusOK {
		t.Errorf("observations %+v", obs)
	}
	// Incremental: only rows stored since the first read's last one.
	obs, err = s.ExperimentObservations(ctx, ObservationQuery{Trial: "t1", Experiment: "notice", From: t0, RecordedSince: t0.Add(5 * time.Second)})
	if err != nil || len(obs) != 1 || obs[0].InteractionID != "i6" {
		t.Errorf("incremental %+v %v", obs, err)
	}
	openIncident(t, s, "i9", "t1", "cand", "pii", events.SeverityHigh, t0.Add(time.Minute))
	incs, err := s.ExperimentIncidents(ctx, "t1", t0)
	if err != nil || len(incs) != 1 || incs[0].InteractionID != "i9" || incs[0].Status != StatusOpen || incs[0].Category != "pii" {
		t.Errorf("incidents %+v %v", incs, err)
	}
	if _, err := s.ExperimentObservations(ctx, ObservationQuery{Trial: "t 1", Experiment: "notice"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad trial: %v", err)
	}
}
