package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/deploy"
	"github.com/stagegate/stagegate/gateway"
)

// This file makes models registered with `stagegate model add` (the MODELS
// bucket) routable by this process's gateway without a restart: a watcher turns
// every registration into a gateway upstream, with its API key resolved here from
// the reference the registration names.

// modelWatchStartTimeout bounds the wait for the registrations that exist at start.
const modelWatchStartTimeout = 10 * time.Second

// upstreamSetter is the part of the gateway the model watcher drives.
type upstreamSetter interface {
	SetUpstream(u *gateway.Upstream) error
	RemoveUpstream(name string) bool
}

var _ upstreamSetter = (*gateway.Gateway)(nil)

// modelWatcher installs registered models in a gateway.
type modelWatcher struct {
	gw         upstreamSetter
	env        func(string) string
	configured func(name string) bool
	log        *slog.Logger

	cancel context.CancelFunc
	kw     jetstream.KeyWatcher
	done   chan struct{}

	mu       sync.Mutex
	problems map[string]string // model -> why it is not routable
	routable map[string]bool
}

// startModelWatch installs every registered model in the gateway before it
// serves, then follows registrations, replacements and removals. A model named
// like a configured one is ignored (the configuration wins).
func (s *Sandbox) startModelWatch(ctx context.Context, gw upstreamSetter) error {
	rp := s.rollouts
	if rp == nil || rp.models == nil || gw == nil {
		return errors.New("model watch: the rollouts and the gateway must start first")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	kw, err := rp.models.Watch(runCtx)
	if err != nil {
		cancel()
		return err
	}
	mw := &modelWatcher{gw: gw, env: s.env, configured: s.configuredModel, log: s.log, cancel: cancel, kw: kw,
		done: make(chan struct{}), problems: map[string]string{}, routable: map[string]bool{}}
	ready := make(chan struct{})
	go mw.run(runCtx, kw.Updates(), ready)
	rp.modelWatch = mw
	t := time.NewTimer(modelWatchStartTimeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-t.C:
		return fmt.Errorf("model watch: registered models not received within %s", modelWatchStartTimeout)
	case <-ctx.Done():
		return fmt.Errorf("model watch: %w", ctx.Err())
	}
}

func (mw *modelWatcher) run(ctx context.Context, updates <-chan jetstream.KeyValueEntry, ready chan struct{}) {
	defer close(mw.done)
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				return
			}
			if e == nil {
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			mw.apply(e)
		}
	}
}

// apply installs, replaces or removes one model. A registration that cannot be
// used (undecodable, or its key reference does not resolve in this process) is
// logged and recorded as a problem; the last good version stays in service.
func (mw *modelWatcher) apply(e jetstream.KeyValueEntry) {
	name := e.Key()
	if mw.configured(name) {
		mw.setProblem(name, "a model of this name is defined in the configuration, which wins")
		return
	}
	if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
		mw.gw.RemoveUpstream(name)
		mw.mu.Lock()
		delete(mw.problems, name)
		delete(mw.routable, name)
		mw.mu.Unlock()
		mw.log.Info("registered model removed from the gateway", "model", name)
		return
	}
	m, err := deploy.DecodeModel(e.Value())
	if err == nil && m.Name != name {
		err = fmt.Errorf("registration of %q stored under the key %q", m.Name, name)
	}
	if err != nil {
		mw.setProblem(name, "the registration cannot be read: "+err.Error())
		return
	}
	key, err := m.APIKey(mw.env)
	if err != nil {
		mw.setProblem(name, "its API key is not available to this process: "+err.Error())
		return
	}
	u := &gateway.Upstream{Name: m.Name, BaseURL: strings.TrimRight(m.BaseURL, "/"), Model: m.Model(), APIKey: key,
		Timeout: m.Timeout.D(), MaxConcurrency: m.MaxConcurrency}
	if err := mw.gw.SetUpstream(u); err != nil {
		mw.setProblem(name, err.Error())
		return
	}
	mw.mu.Lock()
	delete(mw.problems, name)
	mw.routable[name] = true
	mw.mu.Unlock()
	mw.log.Info("registered model routable", "model", name, "base_url", u.BaseURL, "revision", e.Revision())
}

func (mw *modelWatcher) setProblem(name, why string) {
	mw.mu.Lock()
	mw.problems[name] = why
	mw.mu.Unlock()
	mw.log.Error("registered model not routable; the last good version (if any) stays", "model", name, "why", why)
}

// status returns the registered models the gateway routes to (some perhaps in
// their last good version), and why a registration is not (fully) in service.
func (mw *modelWatcher) status() (routable []string, problems map[string]string) {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	routable = append([]string{}, slices.Sorted(maps.Keys(mw.routable))...)
	return routable, maps.Clone(mw.problems)
}

// stop ends the watch and waits for it (bounded by ctx).
func (mw *modelWatcher) stop(ctx context.Context) error {
	mw.cancel()
	_ = mw.kw.Stop()
	select {
	case <-mw.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("model watch stop: %w", ctx.Err())
	}
}
