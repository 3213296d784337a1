package policies

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

// Defaults for ReloaderConfig.
const (
	DefaultDirPollInterval    = 2 * time.Second
	DefaultBundlePollInterval = 30 * time.Second
	DefaultBundleTimeout      = 10 * time.Second
	// DefaultMaxBundleBytes bounds a downloaded bundle (compressed).
	DefaultMaxBundleBytes = 16 << 20
)

// ReloaderConfig says where a trial's policy comes from and how it is checked.
// Exactly one of Dir, FS and BundleURL is set.
type ReloaderConfig struct {
	// Dir is a policy folder on disk, polled for changes every PollInterval.
	Dir string
	// FS is a fixed policy root, never reloaded (e.g. a built-in policy).
	FS fs.FS
	// BundleURL is an OPA bundle (a .tar.gz built by `opa build` or any bundle
	// server) fetched over HTTP(S) every PollInterval, with If-None-Match.
	BundleURL string
	// Query is the decision rule (default DefaultQuery).
	Query string
	// MemoEntries bounds each revision's memo (see Config.MemoEntries).
	MemoEntries int
	// Corpus are decision cases every new revision must pass, besides the Rego
	// unit tests and *.corpus.yaml files the revision carries itself.
	Corpus []CorpusCase
	// PollInterval is how often Dir is scanned (default 2s) or the bundle
	// fetched (default 30s).
	PollInterval time.Duration
	// BundleTimeout bounds one bundle download (default 10s).
	BundleTimeout time.Duration
	// MaxBundleBytes bounds one bundle download (default 16 MiB).
	MaxBundleBytes int64
}

// Validate reports every problem at once, each wrapping ErrConfig.
func (c ReloaderConfig) Validate() error {
	var errs []error
	sources := 0
	for _, set := range []bool{c.Dir != "", c.FS != nil, c.BundleURL != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		errs = append(errs, fmt.Errorf("%w: set exactly one of Dir, FS and BundleURL (got %d)", ErrConfig, sources))
	}
	if c.BundleURL != "" {
		if u, err := url.Parse(c.BundleURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%w: BundleURL %q: want an http(s) URL", ErrConfig, c.BundleURL))
		}
	}
	if c.PollInterval < 0 || c.BundleTimeout < 0 || c.MaxBundleBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: PollInterval, BundleTimeout and MaxBundleBytes must not be negative", ErrConfig))
	}
	if c.Query != "" {
		if _, err := parseQuery(c.Query); err != nil {
			errs = append(errs, fmt.Errorf("%w: Query: %w", ErrConfig, err))
		}
	}
	if c.MemoEntries < -1 {
		errs = append(errs, fmt.Errorf("%w: MemoEntries %d: want -1, 0 or a positive bound", ErrConfig, c.MemoEntries))
	}
	return errors.Join(errs...)
}

func (c ReloaderConfig) withDefaults() ReloaderConfig {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultDirPollInterval
		if c.BundleURL != "" {
			c.PollInterval = DefaultBundlePollInterval
		}
	}
	if c.BundleTimeout == 0 {
		c.BundleTimeout = DefaultBundleTimeout
	}
	if c.MaxBundleBytes == 0 {
		c.MaxBundleBytes = DefaultMaxBundleBytes
	}
	return c
}

// ReloaderDeps are what a Reloader takes from outside.
type ReloaderDeps struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Clock stamps the status and measures decisions; nil is the wall clock.
	Clock clock.Clock
	// HTTPClient fetches bundles; nil uses a client without its own timeout
	// (BundleTimeout bounds each download).
	HTTPClient *http.Client
}

// ReloadStatus is what an operator needs to see: the revision in service, and
// whether the last candidate was refused and why (the alert).
type ReloadStatus struct {
	// Source is the folder, the bundle URL, or "fs".
	Source string `json:"source"`
	// Revision is the revision in service, LoadedAt when it went in.
	Revision string    `json:"revision"`
	LoadedAt time.Time `json:"loaded_at"`
	// BundleETag is the ETag of the bundle last downloaded.
	BundleETag string `json:"bundle_etag,omitempty"`
	// Healthy is false while the last candidate revision (or download) failed:
	// the previous revision keeps serving and LastError says why.
	Healthy          bool      `json:"healthy"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorCode    string    `json:"last_error_code,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
	RejectedRevision string    `json:"rejected_revision,omitempty"`
	// LastCheckAt is when the source was last looked at.
	LastCheckAt time.Time `json:"last_check_at,omitzero"`
	// Checks counts looks at the source, Reloads revisions put into service
	// after the first, Failures refused candidates and failed downloads.
	Checks   uint64 `json:"checks"`
	Reloads  uint64 `json:"reloads"`
	Failures uint64 `json:"failures"`
	// Engine are the counters of the revision in service.
	Engine Stats `json:"engine"`
}

// Reloader is a Decider over the current revision of a trial's policy. A new
// revision is compiled, its Rego tests and decision corpus run, and only then
// swapped in atomically; a revision that fails keeps the previous one serving
// and raises the alert in Status. Decide never waits for a reload.
type Reloader struct {
	cfg  ReloaderConfig
	log  *slog.Logger
	clk  clock.Clock
	http *http.Client

	cur atomic.Pointer[Engine]

	reloadMu    sync.Mutex // one reload at a time
	fingerprint uint64     // of Dir, last looked at
	etag        string     // of the bundle, last downloaded

	mu     sync.Mutex
	status ReloadStatus

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var _ Decider = (*Reloader)(nil)

// NewReloader loads and checks the first revision; a source that gives no good
// revision is an error (there is nothing to serve).
func NewReloader(ctx context.Context, cfg ReloaderConfig, deps ReloaderDeps) (*Reloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Reloader{cfg: cfg, log: deps.Logger, clk: clock.OrReal(deps.Clock), http: deps.HTTPClient}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.http == nil {
		r.http = &http.Client{}
	}
	switch {
	case cfg.Dir != "":
		r.status.Source = cfg.Dir
	case cfg.BundleURL != "":
		r.status.Source = cfg.BundleURL
	default:
		r.status.Source = "fs"
	}
	if _, err := r.Reload(ctx); err != nil {
		return nil, err
	}
	if r.cur.Load() == nil {
		return nil, fmt.Errorf("%w: %s: no policy revision available", ErrCompile, r.status.Source)
	}
	return r, nil
}

// Decide evaluates the revision in service.
func (r *Reloader) Decide(ctx context.Context, in Input) (Decision, error) {
	return r.cur.Load().Decide(ctx, in)
}

// Engine is the revision in service.
func (r *Reloader) Engine() *Engine { return r.cur.Load() }

// Status returns the reload status with the serving engine's counters.
func (r *Reloader) Status() ReloadStatus {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	s.Engine = r.cur.Load().Stats()
	return s
}

// Start polls the source every PollInterval until Stop. A fixed FS is never
// polled.
func (r *Reloader) Start(_ context.Context) error {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.done != nil {
		return errors.New("reloader already started")
	}
	if r.cfg.FS != nil {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.loop(loopCtx, r.done)
	return nil
}

// Stop ends polling and waits for a reload in progress, or for ctx.
func (r *Reloader) Stop(ctx context.Context) error {
	r.runMu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.runMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Reloader) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Reload(ctx) // failures are in Status and the log
		}
	}
}

// Reload looks at the source now: when it holds a new revision that compiles and
// passes its checks, the revision is swapped in and changed is true. A failure
// is returned, recorded in Status and logged; the previous revision keeps
// serving.
func (r *Reloader) Reload(ctx context.Context) (changed bool, err error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	now := r.clk.Now()
	r.mu.Lock()
	r.status.Checks++
	r.status.LastCheckAt = now
	r.mu.Unlock()

	var (
		fsys fs.FS
		fp   uint64 // of Dir, recorded once its revision has been judged
	)
	switch {
	case r.cfg.FS != nil:
		if r.cur.Load() != nil {
			return false, nil
		}
		fsys = r.cfg.FS
	case r.cfg.Dir != "":
		var err error
		if fp, err = dirFingerprint(r.cfg.Dir); err != nil {
			return false, r.fail(fmt.Errorf("%w: policy folder %s: %w", ErrCompile, r.cfg.Dir, err), "")
		}
		if fp == r.fingerprint && r.cur.Load() != nil {
			return false, nil
		}
		fsys = LoadDir(r.cfg.Dir)
	default:
		bfs, etag, err := r.fetchBundle(ctx)
		if err != nil {
			return false, r.fail(err, "")
		}
		if bfs == nil {
			r.ok()
			return false, nil // 304 Not Modified
		}
		r.etag = etag
		r.mu.Lock()
		r.status.BundleETag = etag
		r.mu.Unlock()
		fsys = bfs
	}
	eng, rep, err := Check(ctx, CheckConfig{
		Config: Config{FS: fsys, Query: r.cfg.Query, Clock: r.clk, MemoEntries: r.cfg.MemoEntries},
		Corpus: r.cfg.Corpus,
	})
	if err == nil {
		err = rep.Err()
	}
	if err != nil && ctx.Err() != nil {
		return false, err // stopping: not the revision's fault, no alert; look again next time
	}
	if r.cfg.Dir != "" {
		r.fingerprint = fp
	}
	if err != nil {
		rev := ""
		if rep != nil {
			rev = rep.Revision
		}
		return false, r.fail(err, rev)
	}
	old := r.cur.Load()
	if old != nil && old.Revision() == eng.Revision() {
		r.ok()
		return false, nil
	}
	r.cur.Store(eng)
	r.mu.Lock()
	r.status.Revision, r.status.LoadedAt = eng.Revision(), r.clk.Now()
	if old != nil {
		r.status.Reloads++
	}
	r.status.Healthy, r.status.LastError, r.status.LastErrorCode, r.status.RejectedRevision = true, "", "", ""
	r.mu.Unlock()
	if old != nil {
		r.log.Info("policy revision in service", "source", r.status.Source, "revision", eng.Revision(), "previous", old.Revision(),
			"tests", len(rep.Tests), "cases", len(rep.Cases))
	}
	return true, nil
}

// ok clears the alert after a look at the source that found nothing wrong.
func (r *Reloader) ok() {
	r.mu.Lock()
	r.status.Healthy, r.status.LastError, r.status.LastErrorCode, r.status.RejectedRevision = true, "", "", ""
	r.mu.Unlock()
}

// fail raises the alert: counted, logged, and kept in Status until a later look
// at the source succeeds.
func (r *Reloader) fail(err error, rev string) error {
	r.mu.Lock()
	r.status.Healthy = false
	r.status.Failures++
	r.status.LastError, r.status.LastErrorCode, r.status.LastErrorAt = err.Error(), Code(err), r.clk.Now()
	r.status.RejectedRevision = rev
	serving := r.status.Revision
	r.mu.Unlock()
	if serving == "" {
		serving = "none"
	}
	r.log.Error("policy revision refused; the last good revision keeps serving",
		"source", r.status.Source, "serving", serving, "rejected", rev, "code", Code(err), "err", err)
	return err
}

// dirFingerprint hashes the names, sizes and modification times of the files
// under dir (hidden ones skipped), so a poll reads no file that did not change.
func dirFingerprint(dir string) (uint64, error) {
	h := fnv.New64a()
	n := 0
	err := fs.WalkDir(LoadDir(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if n++; n > 10*MaxPolicyFiles {
			return fmt.Errorf("more than %d files", 10*MaxPolicyFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, info.Size(), 10))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, info.ModTime().UnixNano(), 10))
		h.Write([]byte{0})
		return nil
	})
	return h.Sum64(), err
}
