package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/stagegate/stagegate/events"
)

// DefaultMaxShadows bounds shadow calls in flight; past it, copies are skipped and
// counted rather than queued, so shadows never pile up behind a slow candidate.
const DefaultMaxShadows = 64

// shadow sends a copy of an answered request to the shadow candidate, off the
// request path: the user's answer and latency are already final, the call has its
// own timeout and no client to cancel it, and its answer is published (route
// "shadow") for the monitors, never shown to anyone.
func (g *Gateway) shadow(x *exchange) {
	e := g.entry(x.assign.Shadow)
	if e == nil {
		return
	}
	u := e.u
	select {
	case g.shadows <- struct{}{}:
	default:
		g.shadowsSkipped.Add(1)
		return
	}
	if !e.acquire() { // the candidate is at its max concurrency
		<-g.shadows
		g.shadowsSkipped.Add(1)
		return
	}
	// A copy that never streams: nobody reads it as it arrives.
	req := *x.req
	req.raw = make(map[string]json.RawMessage, len(x.req.raw))
	for k, v := range x.req.raw {
		if k != "stream" && k != "stream_options" {
			req.raw[k] = v
		}
	}
	body, err := req.upstreamBody(u.modelID(), x.decision.Obligations.MaxTokens, x.user)
	in := &events.Interaction{
		ID: x.in.ID + "-shadow", TraceID: x.in.TraceID, Trial: x.in.Trial, Tenant: x.in.Tenant, User: x.in.User,
		Cohort: x.in.Cohort, Stage: x.in.Stage, LogicalModel: x.in.LogicalModel, Model: u.Name, Route: events.RouteShadow,
		Request: x.in.Request, Decision: x.in.Decision, StartedAt: g.clk.Now(),
	}
	ctx := context.WithoutCancel(x.r.Context()) // keeps the trace, not the client's cancellation
	g.shadowWG.Add(1)
	go func() {
		defer g.shadowWG.Done()
		defer func() { e.release(); <-g.shadows }()
		if err != nil {
			return
		}
		g.shadowCall(ctx, e, body, in)
		if perr := g.d.Publisher.Publish(in); perr != nil {
			g.publishErrors.Add(1)
		}
	}()
}

func (g *Gateway) shadowCall(ctx context.Context, e *upstreamEntry, body []byte, in *events.Interaction) {
	u := e.u
	timeout := u.Timeout
	if timeout <= 0 || timeout > g.cfg.UpstreamTimeout {
		timeout = g.cfg.UpstreamTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := g.clk.Now()
	defer func() { in.Latency.TotalMS = ms(g.clk.Now().Sub(start)); in.Latency.UpstreamMS = in.Latency.TotalMS }()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		in.Status, in.Response.Error = events.StatusUpstreamError, err.Error()
		return
	}
	hreq.Header.Set("Content-Type", "application/json")
	if u.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+u.APIKey)
	}
	resp, err := g.clientFor(e).Do(hreq)
	if err != nil {
		in.Status, in.HTTPStatus, in.Response.Error = events.StatusUpstreamError, http.StatusBadGateway, "shadow call failed: "+err.Error()
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, g.cfg.MaxResponseBytes))
	in.HTTPStatus = resp.StatusCode
	if err != nil || resp.StatusCode != http.StatusOK {
		in.Status, in.Response.Error = events.StatusUpstreamError, "shadow model answered "+http.StatusText(resp.StatusCode)
		return
	}
	in.Status = events.StatusOK
	recordCompletion(in, raw)
}

// waitShadows waits for shadow calls in flight (on Stop), bounded by ctx.
func (g *Gateway) waitShadows(ctx context.Context) {
	done := make(chan struct{})
	go func() { g.shadowWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(g.cfg.UpstreamTimeout):
	}
}
