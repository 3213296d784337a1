package incidents

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func TestTrialRevisions(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, clk)
	ctx := context.Background()

	if _, err := s.TrialRevision(ctx, "clinic", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing trial: %v", err)
	}
	r1, created, err := s.PutTrialRevision(ctx, "clinic", "alice@regulator", "first draft", []byte("id: clinic\n"))
	if err != nil || !created || r1.Revision != 1 || r1.CreatedBy != "alice@regulator" || !r1.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("first apply: %+v, %v, %v", r1, created, err)
	}
	// The same source again is not a new revision.
	clk.Advance(time.Minute)
	same, created, err := s.PutTrialRevision(ctx, "clinic", "bob", "", []byte("id: clinic\n"))
	if err != nil || created || same.Revision != 1 || same.CreatedBy != "alice@regulator" {
		t.Errorf("re-apply: %+v, %v, %v", same, created, err)
	}
	r2, created, err := s.PutTrialRevision(ctx, "clinic", "bob", "tighter caps", []byte("id: clinic\ncaps: {}\n"))
	if err != nil || !created || r2.Revision != 2 || r2.Digest == r1.Digest {
		t.Fatalf("second apply: %+v, %v, %v", r2, created, err)
	}
	if _, _, err := s.PutTrialRevision(ctx, "other", "carol", "", []byte("id: other\n")); err != nil {
		t.Fatal(err)
	}

	latest, err := s.TrialRevision(ctx, "clinic", 0)
	if err != nil || latest.Revision != 2 || latest.Source != "id: clinic\ncaps: {}\n" || latest.Comment != "tighter caps" {
		t.Errorf("latest: %+v, %v", latest, err)
	}
	first, err := s.TrialRevision(ctx, "clinic", 1)
	if err != nil || first.Source != "id: clinic\n" || first.CreatedBy != "alice@regulator" {
		t.Errorf("revision 1: %+v, %v", first, err)
	}
	if _, err := s.TrialRevision(ctx, "clinic", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("revision 3: %v", err)
	}
	hist, err := s.TrialRevisions(ctx, "clinic")
	if err != nil || len(hist) != 2 || hist[0].Revision != 2 || hist[1].Revision != 1 || hist[0].Source != "" {
		t.Errorf("history: %+v, %v", hist, err)
	}
	all, err := s.Trials(ctx)
	if err != nil || len(all) != 2 || all[0].Trial != "clinic" || all[0].Revision != 2 || all[1].Trial != "other" {
		t.Errorf("trials: %+v, %v", all, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Revisions survive a reopen, and numbering goes on.
	s = openTest(t, path, clk)
	r3, created, err := s.PutTrialRevision(ctx, "clinic", "alice@regulator", "", []byte("id: clinic\n"))
	if err != nil || !created || r3.Revision != 3 {
		t.Errorf("after reopen: %+v, %v, %v", r3, created, err)
	}
}

func TestTrialRevisionsRejectBadInput(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), nil)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		trial, by, comment string
		src                []byte
	}{
		"bad id":      {"clinic trial", "a", "", []byte("x")},
		"no actor":    {"clinic", " ", "", []byte("x")},
		"empty":       {"clinic", "a", "", nil},
		"too large":   {"clinic", "a", "", make([]byte, MaxTrialSourceBytes+1)},
		"not utf-8":   {"clinic", "a", "", []byte{0xff, 0xfe}},
		"long remark": {"clinic", "a", string(make([]byte, MaxTrialCommentLen+1)), []byte("x")},
	} {
		if _, _, err := s.PutTrialRevision(ctx, tc.trial, tc.by, tc.comment, tc.src); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.TrialRevisions(ctx, "a.b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad id listing: %v", err)
	}
	if list, err := s.TrialRevisions(ctx, "never"); err != nil || len(list) != 0 {
		t.Errorf("unknown trial history: %v, %v", list, err)
	}
}
