package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sync/atomic"
)

// The upstream table: every model the gateway can call, with its circuit breaker,
// HTTP client and concurrency count. Models come from Deps.Upstreams at New and,
// at run time, from SetUpstream (models a company registers while the gateway
// serves). The table is copy-on-write: requests read it with one atomic load and
// no lock; writers build a new map and swap it in.

// ErrModelBusy: the model has as many calls in flight as its MaxConcurrency
// allows (503; a failing candidate falls back to the baseline).
var ErrModelBusy = fmt.Errorf("%w: at its maximum concurrency", ErrModelUnavailable)

// upstreamEntry is one model as the gateway calls it.
type upstreamEntry struct {
	u        *Upstream // a private copy: callers cannot change it under a request
	br       *breaker
	client   *http.Client // nil: the gateway's shared client
	inflight atomic.Int64 // calls holding a concurrency slot (when u.MaxConcurrency > 0)
}

// acquire takes a concurrency slot; false when the model is at its maximum.
func (e *upstreamEntry) acquire() bool {
	if e.u.MaxConcurrency <= 0 {
		return true
	}
	if e.inflight.Add(1) > int64(e.u.MaxConcurrency) {
		e.inflight.Add(-1)
		return false
	}
	return true
}

// release gives back a slot taken by acquire.
func (e *upstreamEntry) release() {
	if e.u.MaxConcurrency > 0 {
		e.inflight.Add(-1)
	}
}

type upstreamTable map[string]*upstreamEntry

// newEntry validates u and builds its entry.
func (g *Gateway) newEntry(u *Upstream) (*upstreamEntry, error) {
	if u == nil {
		return nil, errors.New("gateway: upstream is nil")
	}
	var errs []error
	if u.Name == "" {
		errs = append(errs, errors.New("gateway: upstream has no name"))
	}
	if p, err := url.Parse(u.BaseURL); u.BaseURL == "" || err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		errs = append(errs, fmt.Errorf("gateway: model %s: base url %q is not an http(s) URL", u.Name, u.BaseURL))
	}
	if u.Timeout < 0 || u.ConnectTimeout < 0 || u.FirstTokenTimeout < 0 || u.MaxConcurrency < 0 {
		errs = append(errs, fmt.Errorf("gateway: model %s: timeouts and max concurrency must not be negative", u.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := *u
	e := &upstreamEntry{u: &c, br: newBreaker(c.BreakerFailures, c.BreakerCooldown, g.clk)}
	if c.ConnectTimeout > 0 && g.d.Transport == nil {
		e.client = &http.Client{Transport: newTransport(c.ConnectTimeout)}
	}
	return e, nil
}

// SetUpstream adds a model, or replaces the model of the same name (with a fresh
// circuit breaker), while the gateway serves: requests that start afterwards can
// be routed to it; requests in flight finish on what they started with. It is
// safe for concurrent use.
func (g *Gateway) SetUpstream(u *Upstream) error {
	e, err := g.newEntry(u)
	if err != nil {
		return err
	}
	g.upsMu.Lock()
	defer g.upsMu.Unlock()
	cur := *g.ups.Load()
	next := maps.Clone(cur)
	old := cur[e.u.Name]
	next[e.u.Name] = e
	g.ups.Store(&next)
	if old != nil && old.client != nil {
		old.client.CloseIdleConnections()
	}
	return nil
}

// RemoveUpstream drops a model; requests routed to it afterwards get 502. It
// reports whether the model existed.
func (g *Gateway) RemoveUpstream(name string) bool {
	g.upsMu.Lock()
	defer g.upsMu.Unlock()
	cur := *g.ups.Load()
	old, ok := cur[name]
	if !ok {
		return false
	}
	next := maps.Clone(cur)
	delete(next, name)
	g.ups.Store(&next)
	if old.client != nil {
		old.client.CloseIdleConnections()
	}
	return true
}

// Upstream returns a copy of the model of that name, as the gateway calls it.
func (g *Gateway) Upstream(name string) (Upstream, bool) {
	e := (*g.ups.Load())[name]
	if e == nil {
		return Upstream{}, false
	}
	return *e.u, true
}

// entry returns the model of that name, or nil: one atomic load, no lock.
func (g *Gateway) entry(name string) *upstreamEntry { return (*g.ups.Load())[name] }

// clientFor returns the HTTP client of a model: its own (its connect timeout) or
// the gateway's shared one.
func (g *Gateway) clientFor(e *upstreamEntry) *http.Client {
	if e.client != nil {
		return e.client
	}
	return g.client
}
