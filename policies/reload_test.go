package policies

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/stagegate/stagegate/internal/testutil"
)

// goodPolicy allows everything and says which version it is in its notice.
func goodPolicy(version string) map[string]string {
	return map[string]string{
		"policy.rego": "package stagegate\n\ndecision := {\"allow\": true, \"obligations\": {\"notice\": data.version}}\n",
		"data.json":   `{"version": "` + version + `"}`,
		"policy_test.rego": "package stagegate_test\n\nimport data.stagegate\n\n" +
			"test_allows if stagegate.decision.allow\n",
		"smoke.corpus.yaml": "cases:\n  - name: weapons are allowed here\n    input: {signals: {topics: [weapons]}}\n    expect: {allow: true}\n",
	}
}

// writePolicy replaces the folder's files with files.
func writePolicy(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func notice(t *testing.T, d Decider) string {
	t.Helper()
	dec, err := d.Decide(context.Background(), realisticInput())
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return dec.Obligations.Notice
}

func TestReloaderKeepsTheLastGoodRevision(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, goodPolicy("v1"))
	r, err := NewReloader(context.Background(), ReloaderConfig{Dir: dir}, ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if notice(t, r) != "v1" {
		t.Fatal("v1 not serving")
	}
	v1 := r.Status().Revision

	with := func(name, src string) map[string]string {
		files := goodPolicy("bad")
		files[name] = src
		return files
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		code  string
		want  string
	}{
		{"broken rego", with("policy.rego", "package stagegate\n\ndecision := {\"allow\": \n"), CodeCompile, "policy.rego:4"},
		{"no decision rule", with("policy.rego", "package stagegate\n\nverdict := {\"allow\": true}\n"), CodeCompile, "matches no rule"},
		{"undefined decision", with("policy.rego", "package stagegate\n\ndecision := {\"allow\": true} if input.trial == \"x\"\n"), CodeCheck, "policy decision undefined"},
		{"wrong shape", with("policy.rego", "package stagegate\n\ndecision := {\"allow\": true, \"route\": \"moon\"}\n"), CodeCheck, "decision.route"},
		{"failing rego test", with("policy_test.rego", "package stagegate_test\n\nimport data.stagegate\n\ntest_denies if not stagegate.decision.allow\n"), CodeCheck, "test stagegate_test.test_denies"},
		{"failing corpus", with("smoke.corpus.yaml", "cases:\n  - name: must deny\n    expect: {allow: false}\n"), CodeCheck, "must deny"},
		{"broken corpus", with("smoke.corpus.yaml", "cases:\n  - name: x\n    expect: {allow: perhaps}\n"), CodeInput, "smoke.corpus.yaml:3"},
		{"bad data", with("data.json", `{"version": `), CodeCompile, "data.json: invalid JSON"},
		{"nondeterministic", with("policy.rego", "package stagegate\n\ndecision := {\"allow\": time.now_ns() > 0}\n"), CodeCompile, "time.now_ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writePolicy(t, dir, tc.files)
			changed, err := r.Reload(context.Background())
			if changed || err == nil || Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload = %v, %v; want code %s mentioning %q", changed, err, tc.code, tc.want)
			}
			st := r.Status()
			if st.Healthy || st.LastErrorCode != tc.code || st.Revision != v1 || st.LastError == "" {
				t.Errorf("status %+v", st)
			}
			if notice(t, r) != "v1" {
				t.Error("the last good revision is not serving")
			}
			// Nothing changed on disk: the next look keeps the alert and does not recompile.
			if changed, err := r.Reload(context.Background()); changed || err != nil || r.Status().Healthy {
				t.Errorf("second look: %v, %v, healthy %v", changed, err, r.Status().Healthy)
			}
		})
	}
	writePolicy(t, dir, goodPolicy("v2"))
	changed, err := r.Reload(context.Background())
	if !changed || err != nil {
		t.Fatalf("good v2: %v, %v", changed, err)
	}
	st := r.Status()
	if !st.Healthy || st.LastError != "" || st.Revision == v1 || st.Reloads != 1 || st.Failures != 9 || notice(t, r) != "v2" {
		t.Errorf("after v2: %+v", st)
	}
}

func TestReloaderRequiresAGoodFirstRevision(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, map[string]string{"policy.rego": "package stagegate\n\ndecision := {"})
	if _, err := NewReloader(context.Background(), ReloaderConfig{Dir: dir}, ReloaderDeps{}); !errors.Is(err, ErrCompile) {
		t.Errorf("err = %v, want ErrCompile", err)
	}
	if _, err := NewReloader(context.Background(), ReloaderConfig{Dir: filepath.Join(dir, "missing")}, ReloaderDeps{}); err == nil {
		t.Error("a missing folder gave a reloader")
	}
	err := ReloaderConfig{Dir: dir, BundleURL: "ftp://x", PollInterval: -1, MemoEntries: -5}.Validate()
	for _, want := range []string{"exactly one of", "BundleURL", "negative", "MemoEntries"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
}

// TestReloaderZeroFailedDecisionsDuringReloads: decisions run without pause
// while the folder flips between two good revisions and a broken one; not one
// decision fails, and each comes from a good revision.
func TestReloaderZeroFailedDecisionsDuringReloads(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, goodPolicy("v1"))
	r, err := NewReloader(context.Background(), ReloaderConfig{Dir: dir}, ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		stop      atomic.Bool
		decisions atomic.Int64
		failures  atomic.Int64
		wrong     atomic.Int64
		wg        sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				in := realisticInput()
				in.Request.MaxTokens = w*100000 + i // mostly memo misses
				d, err := r.Decide(context.Background(), in)
				decisions.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				if d.Obligations.Notice != "v1" && d.Obligations.Notice != "v2" {
					wrong.Add(1)
				}
			}
		})
	}
	broken := goodPolicy("broken")
	broken["policy.rego"] = "package stagegate\n\ndecision := {\n"
	reloads := 0
	for i := range 30 {
		files := goodPolicy(fmt.Sprintf("v%d", 1+i%2))
		if i%3 == 2 {
			files = broken
		}
		writePolicy(t, dir, files)
		if changed, _ := r.Reload(context.Background()); changed {
			reloads++
		}
	}
	testutil.WaitFor(t, 10*time.Second, "decisions after the reloads", func() bool { return decisions.Load() > 200 })
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 || wrong.Load() != 0 {
		t.Errorf("%d of %d decisions failed, %d from a wrong revision", failures.Load(), decisions.Load(), wrong.Load())
	}
	if reloads < 10 || r.Status().Failures < 10 {
		t.Errorf("%d reloads, status %+v", reloads, r.Status())
	}
	t.Logf("%d decisions, %d reloads, %d refused revisions, 0 failures", decisions.Load(), reloads, r.Status().Failures)
}

func TestReloaderPollsTheFolder(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, goodPolicy("v1"))
	r, err := NewReloader(context.Background(), ReloaderConfig{Dir: dir, PollInterval: 10 * time.Millisecond}, ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	writePolicy(t, dir, goodPolicy("v2"))
	testutil.WaitFor(t, 10*time.Second, "the watcher to serve v2", func() bool { return notice(t, r) == "v2" })
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	checks := r.Status().Checks
	writePolicy(t, dir, goodPolicy("v3"))
	// Stopped: an explicit Reload still works, the loop does not run.
	if notice(t, r) != "v2" || r.Status().Checks != checks {
		t.Error("the loop ran after Stop")
	}
}

func TestReloaderFixedFS(t *testing.T) {
	r, err := NewReloader(context.Background(), ReloaderConfig{FS: demoFS(t)}, ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(context.Background()); changed || err != nil {
		t.Errorf("a fixed FS reloaded: %v, %v", changed, err)
	}
	if r.Status().Source != "fs" || r.Engine().Revision() != demoEngine(t).Revision() || !r.Status().Healthy {
		t.Errorf("status %+v", r.Status())
	}
}

// bundleServer serves what its handler field says, counting requests.
type bundleServer struct {
	mu          sync.Mutex
	body        []byte
	etag        string
	mode        string // "ok", "garbage", "hang", "500"
	requests    int
	notModified int
	release     chan struct{}
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	mode, body, etag := s.mode, s.body, s.etag
	if mode == "ok" && etag != "" && r.Header.Get("If-None-Match") == etag {
		s.notModified++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.mu.Unlock()
	switch mode {
	case "garbage":
		w.Header().Set("ETag", `"garbage"`)
		_, _ = w.Write([]byte("<html>this is not a bundle</html>"))
	case "hang":
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	case "500":
		http.Error(w, "oops", http.StatusInternalServerError)
	default:
		w.Header().Set("ETag", etag)
		_, _ = w.Write(body)
	}
}

func (s *bundleServer) set(mode string, files map[string]string, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode, s.etag = mode, etag
	if files != nil {
		s.body = buildBundle(files)
	}
}

// buildBundle writes a real OPA bundle tarball with OPA's bundle writer.
func buildBundle(files map[string]string) []byte {
	var b bundle.Bundle
	b.Data = map[string]any{}
	for name, src := range files {
		switch {
		case strings.HasSuffix(name, ".rego"):
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(src)})
		case name == "data.json":
			b.Data["version"] = strings.TrimSuffix(strings.TrimPrefix(src, `{"version": "`), `"}`)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).DisableFormat(true).Write(b); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func TestReloaderBundle(t *testing.T) {
	srv := &bundleServer{release: make(chan struct{})}
	srv.set("ok", goodPolicy("b1"), `"b1"`)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer close(srv.release)

	r, err := NewReloader(context.Background(), ReloaderConfig{BundleURL: ts.URL + "/bundles/trial.tar.gz", BundleTimeout: 200 * time.Millisecond}, ReloaderDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if notice(t, r) != "b1" || r.Status().BundleETag != `"b1"` {
		t.Fatalf("bundle b1 not serving: %+v", r.Status())
	}
	b1 := r.Status().Revision

	// Unchanged: 304 for our ETag.
	if changed, err := r.Reload(context.Background()); changed || err != nil || srv.notModified != 1 {
		t.Errorf("unchanged bundle: %v, %v, %d not-modified answers", changed, err, srv.notModified)
	}
	for _, tc := range []struct {
		mode string
		want string
	}{
		{"garbage", "not a readable bundle"},
		{"hang", "no answer within 200ms"},
		{"500", "HTTP 500"},
	} {
		srv.set(tc.mode, nil, "")
		changed, err := r.Reload(context.Background())
		if changed || !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Reload = %v, %v; want ErrBundle mentioning %q", tc.mode, changed, err, tc.want)
		}
		if st := r.Status(); st.Healthy || st.LastErrorCode != CodeBundle || st.Revision != b1 || notice(t, r) != "b1" {
			t.Errorf("%s: status %+v", tc.mode, st)
		}
	}
	// A bundle that fails its own Rego test is refused too.
	bad := goodPolicy("b-bad")
	bad["policy_test.rego"] = "package stagegate_test\n\nimport data.stagegate\n\ntest_denies if not stagegate.decision.allow\n"
	srv.set("ok", bad, `"bad"`)
	if _, err := r.Reload(context.Background()); !errors.Is(err, ErrCheck) || notice(t, r) != "b1" {
		t.Errorf("failing bundle: %v", err)
	}
	srv.set("ok", goodPolicy("b2"), `"b2"`)
	if changed, err := r.Reload(context.Background()); !changed || err != nil || notice(t, r) != "b2" || !r.Status().Healthy {
		t.Errorf("bundle b2: %v, %v, %+v", changed, err, r.Status())
	}
}

func TestBundleFS(t *testing.T) {
	fsys, err := BundleFS(buildBundle(goodPolicy("x")))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Config{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if notice(t, e) != "x" {
		t.Error("bundle data not loaded")
	}
	for name, raw := range map[string][]byte{"empty": nil, "text": []byte("hello"), "truncated": buildBundle(goodPolicy("x"))[:40]} {
		if _, err := BundleFS(raw); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
