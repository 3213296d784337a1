package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/stagegate/stagegate/events"
)

// Defaults for upstream calls.
const (
	DefaultConnectTimeout  = 5 * time.Second
	DefaultStreamKeepAlive = 5 * time.Second
	maxConnectRetries      = 1
)

// ErrModelUnavailable: the model's circuit breaker is open (503).
var ErrModelUnavailable = errors.New("model temporarily unavailable")

// call sends the request to the assigned model. When the candidate fails before
// any answer byte reached the client and the trial allows it, the request falls
// back to the baseline; the interaction records both.
func (g *Gateway) call(x *exchange) (*http.Response, context.CancelFunc, error) {
	resp, cancel, err := g.callModel(x)
	if err == nil || !g.fallbackAllowed(x, err) {
		return resp, cancel, err
	}
	base, ok := x.assign.Fallback, x.assign.Fallback != ""
	if !ok {
		base, ok = g.d.Assigner.Route(x.trial.ID, events.RouteBaseline)
	}
	e := g.entry(base)
	if !ok || e == nil || base == x.upstream.Name {
		return nil, nil, err
	}
	g.fallbacks.Add(1)
	g.log.Warn("candidate failed, falling back to the baseline", "trial", x.trial.ID, "interaction", x.in.ID,
		"candidate", x.upstream.Name, "baseline", base, "err", err)
	x.in.FallbackFrom = x.upstream.Name
	x.upstream, x.up, x.assign.Model, x.assign.Route = e.u, e, base, events.RouteBaseline
	x.in.Model, x.in.Route = base, events.RouteBaseline
	if !x.sse {
		x.w.Header().Set(HeaderModel, base)
	}
	return g.callModel(x)
}

// fallbackAllowed: the trial allows it, the candidate was serving, the model
// failed (not the request), and no answer byte has left yet.
func (g *Gateway) fallbackAllowed(x *exchange, err error) bool {
	if !(x.trial.Fallback || x.assign.Fallback != "") || x.assign.Route != events.RouteCandidate || x.wrote || x.r.Context().Err() != nil {
		return false
	}
	return errors.Is(err, ErrUpstream) || errors.Is(err, ErrUpstreamTimeout) || errors.Is(err, ErrModelUnavailable)
}

// callModel calls x.upstream through its circuit breaker and within its
// concurrency limit, retrying once on a connection that could not be made
// (nothing was sent, so a retry is safe).
func (g *Gateway) callModel(x *exchange) (*http.Response, context.CancelFunc, error) {
	u, e := x.upstream, x.up
	if !e.acquire() {
		return nil, nil, Error(http.StatusServiceUnavailable, fmt.Errorf("%w: %s (%d calls in flight)", ErrModelBusy, u.Name, u.MaxConcurrency))
	}
	resp, cancel, err := g.callBreaker(x, u, e)
	switch {
	case err != nil:
		e.release()
	case u.MaxConcurrency > 0: // the slot is held until the answer is read
		inner, released := cancel, new(atomic.Bool)
		cancel = func() { // may run twice (first-token timeout, then defer)
			inner()
			if released.CompareAndSwap(false, true) {
				e.release()
			}
		}
	}
	return resp, cancel, err
}

func (g *Gateway) callBreaker(x *exchange, u *Upstream, e *upstreamEntry) (*http.Response, context.CancelFunc, error) {
	br := e.br
	if !br.allow() {
		return nil, nil, Error(http.StatusServiceUnavailable, fmt.Errorf("%w: %s (circuit open after repeated failures)", ErrModelUnavailable, u.Name))
	}
	for attempt := 0; ; attempt++ {
		resp, cancel, err, health := g.send(x, u)
		if err != nil {
			endUpstreamSpan(x, err)
		}
		switch health {
		case healthy:
			br.record(true)
		case unhealthy, unreachable:
			br.record(false)
		default:
			br.release()
		}
		if err == nil || health != unreachable || attempt >= maxConnectRetries || x.r.Context().Err() != nil {
			return resp, cancel, err
		}
		if !br.allow() {
			return nil, nil, err
		}
	}
}

// callHealth classifies a call's outcome for the breaker and for retries.
type callHealth int

const (
	healthy     callHealth = iota // answered (2xx, or a 4xx about the request)
	unhealthy                     // 5xx, 429, timeout, broken connection
	unreachable                   // no connection could be made: unhealthy, and safe to retry
	unknown                       // the client went away: says nothing about the model
)

// send makes one HTTP call. The returned cancel must be called when the body is
// done with. For streams it keeps the client's connection alive with SSE comments
// while the model is slow to answer.
func (g *Gateway) send(x *exchange, u *Upstream) (*http.Response, context.CancelFunc, error, callHealth) {
	body, err := x.req.upstreamBody(u.modelID(), x.decision.Obligations.MaxTokens, x.user)
	if err != nil {
		return nil, nil, Error(http.StatusInternalServerError, fmt.Errorf("encode upstream request: %w", err)), unknown
	}
	timeout := u.Timeout
	if timeout <= 0 || timeout > g.cfg.UpstreamTimeout {
		timeout = g.cfg.UpstreamTimeout
	}
	// The client's context: a client that goes away cancels the upstream call.
	ctx, cancel := context.WithTimeout(x.r.Context(), timeout)
	ctx, x.upSpan = g.tracer.Start(ctx, "chat "+u.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.GenAIOperationNameChat, semconv.GenAIRequestModel(u.modelID()), AttrRoute.String(x.assign.Route)))
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: %s: %v", ErrUpstream, u.Name, err)), unhealthy
	}
	hreq.Header["Content-Type"] = hdrJSON
	if x.req.Stream {
		hreq.Header["Accept"] = hdrEventStream
	}
	if u.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+u.APIKey)
	}
	if x.upSpan.SpanContext().IsValid() {
		traceContext.Inject(ctx, propagation.HeaderCarrier(hreq.Header))
	} else if tp := events.TraceParent(x.in.TraceID); tp != "" {
		hreq.Header[headerTraceparent] = []string{tp}
	}
	upStart := g.clk.Now()
	stopKeepAlive := g.keepAlive(x)
	resp, err := g.clientFor(x.up).Do(hreq)
	stopKeepAlive()
	if err != nil {
		cancel()
		x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
		var opErr *net.OpError
		switch {
		case x.r.Context().Err() != nil:
			return nil, nil, fmt.Errorf("client went away: %w", context.Canceled), unknown
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, nil, Error(http.StatusGatewayTimeout, fmt.Errorf("%w: model %s", ErrUpstreamTimeout, u.Name)), unhealthy
		case errors.As(err, &opErr) && opErr.Op == "dial":
			return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: model %s unreachable", ErrUpstream, u.Name)), unreachable
		}
		return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: model %s: connection failed", ErrUpstream, u.Name)), unhealthy
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		msg := upstreamErrorMessage(resp)
		x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			// The model rejected the request itself: the client should see why.
			return nil, nil, Error(resp.StatusCode, fmt.Errorf("%w: model %s rejected the request: %s", ErrMalformed, u.Name, msg)), healthy
		}
		return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: model %s answered %d: %s", ErrUpstream, u.Name, resp.StatusCode, msg)), unhealthy
	}
	return resp, cancel, nil, healthy
}

// keepAlive, for a stream whose model has not answered within StreamKeepAlive,
// commits the SSE response and sends a comment line at that interval, so proxies
// and clients do not time out. It returns a function that stops it and waits.
func (g *Gateway) keepAlive(x *exchange) (stop func()) {
	if !x.req.Stream || g.cfg.StreamKeepAlive <= 0 {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTimer(g.cfg.StreamKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				g.commitSSE(x)
				if _, err := x.w.Write([]byte(": keep-alive\n\n")); err != nil {
					return
				}
				_ = http.NewResponseController(x.w).Flush()
				t.Reset(g.cfg.StreamKeepAlive)
			}
		}
	}()
	return func() { close(done); <-exited }
}

// commitSSE sends the event-stream response headers once.
func (g *Gateway) commitSSE(x *exchange) {
	if x.sse {
		return
	}
	h := x.w.Header()
	h["Content-Type"] = hdrEventStream
	h["Cache-Control"] = hdrNoCache
	h["X-Accel-Buffering"] = hdrNo
	x.w.WriteHeader(http.StatusOK)
	x.sse = true
}

// endUpstreamSpan closes the current upstream client span.
func endUpstreamSpan(x *exchange, err error) {
	if x.upSpan == nil {
		return
	}
	if err != nil {
		x.upSpan.SetStatus(codes.Error, err.Error())
	} else if x.upSpan.IsRecording() {
		x.upSpan.SetAttributes(semconv.GenAIResponseModel(x.upstream.modelID()))
	}
	x.upSpan.End()
	x.upSpan = nil
}
