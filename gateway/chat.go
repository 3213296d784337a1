package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/policies"
)

// Response headers every answer carries.
const (
	HeaderInteraction = "X-Stagegate-Interaction"
	HeaderModel       = "X-Stagegate-Model"
	HeaderStage       = "X-Stagegate-Stage"
)

// exchange is one chat request on its way through the steps; it accumulates the
// interaction that is published at the end.
type exchange struct {
	w         http.ResponseWriter
	r         *http.Request
	start     time.Time
	principal Principal
	trial     *Trial
	req       *chatRequest
	user      string // pseudonymised
	decision  policies.Decision
	assign    Assignment
	upstream  *Upstream
	up        *upstreamEntry // upstream's entry: breaker, client, concurrency
	upSpan    trace.Span     // the current upstream call's client span
	sse       bool           // event-stream headers were sent (keep-alive or stream)
	wrote     bool           // bytes of the answer reached the client
	in        *events.Interaction
	held      hold // concurrency slots of the trial's limits (limits.go)
}

// serveChat runs the request path. Each step is a method that either moves the
// exchange on or returns the error the client gets; the interaction is published
// last, whatever happened, once the request got as far as a known trial.
func (g *Gateway) serveChat(w http.ResponseWriter, r *http.Request) {
	g.requests.Add(1)
	ctx, span := g.startServerSpan(r)
	x := &exchange{w: w, r: r.WithContext(ctx), start: g.clk.Now()}
	x.in = &events.Interaction{ID: g.newID(), StartedAt: x.start}
	if sc := span.SpanContext(); sc.IsValid() {
		x.in.TraceID = sc.TraceID().String()
	} else {
		x.in.TraceID = g.traceID(r)
	}
	w.Header().Set(HeaderInteraction, x.in.ID)

	err := g.authenticate(x)
	if err == nil {
		err = g.limitKey(x)
	}
	if err == nil {
		err = g.checkParticipant(x)
	}
	if err == nil {
		err = g.checkWindow(x)
	}
	if err == nil {
		err = g.checkRecording(x)
	}
	if err == nil {
		err = g.decode(x)
	}
	if err == nil {
		g.assignCohort(x) // needs the pseudonymous user from decode
		err = g.limitUser(x)
	}
	if err == nil {
		err = g.decide(x)
	}
	if err == nil {
		err = g.assignModel(x)
	}
	if err == nil {
		// Admitted: it counts against the user's caps (a stream until it ends).
		release := g.quotas.admit(x.quotaKey(), x.start, x.trial.Caps, x.req.Stream)
		if x.req.Stream {
			err = g.stream(x)
		} else {
			err = g.proxy(x)
		}
		release()
	}
	g.finish(x, err)
	x.held.release()
	g.publish(x)
	if err == nil && x.assign.Shadow != "" && x.assign.Shadow != x.in.Model {
		g.shadow(x)
	}
	g.metrics.record(ctx, x)
	g.logDecision(ctx, x)
	endServerSpan(span, x, err)
}

// authenticate maps the bearer key to a principal and its trial.
func (g *Gateway) authenticate(x *exchange) error {
	p, err := g.principal(x.r)
	if err != nil {
		return err
	}
	e := (*g.trials.Load())[p.Trial]
	if e == nil {
		return Error(http.StatusUnauthorized, fmt.Errorf("%w: the key's trial is not configured", ErrUnauthorized))
	}
	t := e.t
	x.principal, x.trial = p, t
	x.in.Trial, x.in.Tenant, x.in.Cohort = t.ID, p.Tenant, p.Cohort
	return nil
}

func (g *Gateway) principal(r *http.Request) (Principal, error) {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || key == "" {
		return Principal{}, Error(http.StatusUnauthorized, fmt.Errorf("%w: send 'Authorization: Bearer <key>'", ErrUnauthorized))
	}
	p, ok := g.keys.Load().Lookup(strings.TrimSpace(key))
	if !ok {
		return Principal{}, Error(http.StatusUnauthorized, ErrUnauthorized)
	}
	return p, nil
}

// decode reads and validates the body, and pseudonymises the end user at once so
// the raw id goes no further.
func (g *Gateway) decode(x *exchange) error {
	body, err := readBodyWithin(x.w, x.r, g.cfg.MaxBodyBytes, g.cfg.BodyReadTimeout)
	if err != nil {
		return err
	}
	req, err := decodeChatRequest(body)
	if err != nil {
		return err
	}
	if req.Model != x.trial.LogicalModel {
		return Error(http.StatusNotFound, fmt.Errorf("%w: %q is not offered in trial %s (use %q)", ErrUnknownModel, req.Model, x.trial.ID, x.trial.LogicalModel))
	}
	x.req = req
	user := req.User
	if user == "" {
		user = "key:" + x.principal.KeyID // no end-user id: the key stands for its user
	}
	x.user = g.d.Pseudonymize(x.principal.Tenant, user)
	x.in.User, x.in.LogicalModel, x.in.Stream = x.user, req.Model, req.Stream
	x.in.Request = events.Request{Messages: req.Messages, MaxTokens: req.MaxTokens, Temperature: req.Temperature}
	return nil
}

// checkWindow refuses requests outside the trial's start and end.
func (g *Gateway) checkWindow(x *exchange) error {
	t := x.trial
	if (!t.Start.IsZero() && x.start.Before(t.Start)) || (!t.End.IsZero() && !x.start.Before(t.End)) {
		return Error(http.StatusForbidden, fmt.Errorf("%w: trial %s runs from %s to %s", ErrTrialNotActive, t.ID,
			fmtBound(t.Start, "the start"), fmtBound(t.End, "open end")))
	}
	return nil
}

func fmtBound(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// quotaKey identifies the user within the trial for cap counting.
func (x *exchange) quotaKey() string { return x.trial.ID + "\x00" + x.user }

// checkRecording refuses a request of a fail-closed trial when its interaction
// could not be recorded: evidence the monitors never see is a hole in the trial.
// A fail-open trial serves on, and the publisher counts the loss loudly.
func (g *Gateway) checkRecording(x *exchange) error {
	if x.trial.FailMode != policies.FailOpen && g.d.Publisher.Full() {
		return Error(http.StatusServiceUnavailable, fmt.Errorf("%w: the trial fails closed; try again shortly", ErrRecordingUnavailable))
	}
	return nil
}

// decide extracts signals from the prompt and asks the trial's policy. The policy
// sees facts, never raw text.
func (g *Gateway) decide(x *exchange) error {
	texts := make([]string, len(x.req.Messages))
	roles := make([]string, len(x.req.Messages))
	size := 0
	for i, m := range x.req.Messages {
		texts[i], roles[i] = m.Content, m.Role
		size += len(m.Content)
	}
	stage := ""
	if a, ok := g.d.Assigner.Assign(x.trial.ID, x.user, x.in.Cohort, x.in.ID); ok {
		stage = a.Stage
	}
	in := policies.Input{
		Trial: x.trial.ID,
		Stage: stage,
		Time:  x.start.UTC().Truncate(time.Minute).Format(time.RFC3339),
		Request: policies.RequestFacts{
			Model: x.req.Model, Stream: x.req.Stream, MaxTokens: x.req.MaxTokens,
			MessageCount: len(x.req.Messages), Roles: roles, EstimatedPromptTokens: size/4 + 1,
		},
		Caller: policies.Caller{Tenant: x.principal.Tenant, User: x.user, Cohort: x.in.Cohort, Attributes: x.principal.Attributes,
			OverQuota: g.quotas.over(x.quotaKey(), x.start, x.trial.Caps, x.req.Stream)},
		Signals: x.trial.Extractor.Extract(texts...),
	}
	if x.trial.ContentAccess {
		in.Content = make([]policies.ContentMessage, len(x.req.Messages))
		for i, m := range x.req.Messages {
			in.Content[i] = policies.ContentMessage{Role: m.Role, Text: m.Content}
		}
	}
	x.in.Stage = stage
	ctx, span := g.tracer.Start(x.r.Context(), "policy.decide")
	d, err := x.trial.Decider.Decide(ctx, in)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("stagegate.policy.revision", d.Revision), attribute.Bool("stagegate.decision.allow", d.Allow),
			attribute.Int64("stagegate.policy.eval_us", d.EvalMicros))
	}
	span.End()
	if err != nil {
		g.log.Error("policy decision failed", "trial", x.trial.ID, "interaction", x.in.ID, "err", err)
		if x.trial.FailMode != policies.FailOpen {
			return Error(http.StatusServiceUnavailable, fmt.Errorf("%w: the trial fails closed", ErrPolicyUnavailable))
		}
		d = policies.Decision{Allow: true, FailMode: policies.FailOpen, Reasons: []policies.Reason{{Code: "policy_error_fail_open", Message: "policy unavailable; the trial fails open"}}}
		// Recorded all the same, so a replay can re-evaluate it.
		d.Input, d.InputHash = policies.CanonicalInput(in)
	}
	// What the trial imposes whatever the policy says, folded in and recorded
	// apart so a replay folds it into a re-evaluated decision the same way.
	var rules *events.TrialRules
	if x.trial.RedactPII || x.trial.Caps.TokensPerRequest > 0 {
		rules = &events.TrialRules{MaxTokens: x.trial.Caps.TokensPerRequest, RedactPII: x.trial.RedactPII}
		d.Obligations.RedactPIIInStorage, d.Obligations.MaxTokens = rules.Apply(d.Obligations.RedactPIIInStorage, d.Obligations.MaxTokens)
	}
	x.decision = d
	x.in.Decision = events.Decision{
		Allow: d.Allow, Route: d.Route, PolicyRevision: d.Revision, EvalMicros: d.EvalMicros,
		Input: d.Input, InputHash: d.InputHash, MemoHit: d.MemoHit,
		Experiment: d.Experiment, Arm: d.Arm, VariantRevision: d.VariantRevision, TrialRules: rules,
		Obligations: events.Obligations{RedactPIIInStorage: d.Obligations.RedactPIIInStorage, MaxTokens: d.Obligations.MaxTokens, Notice: d.Obligations.Notice},
	}
	for _, r := range d.Reasons {
		x.in.Decision.Reasons = append(x.in.Decision.Reasons, events.Reason{Code: r.Code, Message: r.Message})
	}
	if !d.Allow {
		msg, code := "the trial's policy does not allow this request", ""
		if len(d.Reasons) > 0 {
			parts := make([]string, len(d.Reasons))
			for i, r := range d.Reasons {
				parts[i] = r.Message
			}
			msg, code = strings.Join(parts, "; "), d.Reasons[0].Code
		}
		return Error(http.StatusForbidden, fmt.Errorf("%w: %s", ErrDenied, msg)).withCode(code)
	}
	return nil
}

// assignModel picks candidate or baseline (sticky per user); the policy may
// override the route, e.g. to keep an over-quota user on the baseline.
func (g *Gateway) assignModel(x *exchange) error {
	a, ok := g.d.Assigner.Assign(x.trial.ID, x.user, x.in.Cohort, x.in.ID)
	if !ok {
		return Error(http.StatusServiceUnavailable, fmt.Errorf("%w: trial %s has no rollout plan", ErrUpstream, x.trial.ID))
	}
	if x.decision.Route != "" && x.decision.Route != a.Route {
		if alt, ok := g.d.Assigner.Route(x.trial.ID, x.decision.Route); ok {
			a.Model, a.Route = alt, x.decision.Route
		}
	}
	e := g.entry(a.Model)
	if e == nil {
		return Error(http.StatusBadGateway, fmt.Errorf("%w: model %s is not configured", ErrUpstream, a.Model))
	}
	x.assign, x.upstream, x.up = a, e.u, e
	x.in.Model, x.in.Route, x.in.Stage = a.Model, a.Route, a.Stage
	h := x.w.Header()
	h.Set(HeaderModel, a.Model)
	h.Set(HeaderStage, a.Stage)
	return nil
}

// finish answers the client with err, if any and nothing was sent yet, and
// completes the interaction record.
func (g *Gateway) finish(x *exchange, err error) {
	end := g.clk.Now()
	x.in.Latency.TotalMS = ms(end.Sub(x.start))
	if err == nil {
		g.ok.Add(1)
		if x.in.Status == "" {
			x.in.Status, x.in.HTTPStatus = events.StatusOK, http.StatusOK
		}
		return
	}
	var he *HTTPError
	if !errors.As(err, &he) {
		he = Error(http.StatusInternalServerError, err)
	}
	switch {
	case errors.Is(err, ErrDenied):
		g.denied.Add(1)
		x.in.Status = events.StatusDenied
	case errors.Is(err, context.Canceled) || x.r.Context().Err() != nil:
		x.in.Status = events.StatusClientClosed
	case he.Status >= 500:
		g.upstreamErrors.Add(1)
		if x.in.Status == "" {
			x.in.Status = events.StatusUpstreamError
		}
	default:
		g.clientErrors.Add(1)
	}
	x.in.HTTPStatus = he.Status
	if x.in.Response.Error == "" {
		x.in.Response.Error = he.Error()
	}
	switch {
	case x.wrote: // the stream already ended with its own error event
	case x.sse:
		writeErrorEvent(x.w, he)
	default:
		writeError(x.w, he)
	}
}

// publish hands the interaction to the events publisher. Requests that never
// reached a trial's request (bad key, malformed body) are not interactions.
func (g *Gateway) publish(x *exchange) {
	if x.req == nil || x.in.Status == "" {
		return
	}
	// The producer span's context travels in the message's traceparent header.
	_, span := g.tracer.Start(x.r.Context(), "publish "+events.SubjectInteractions, trace.WithSpanKind(trace.SpanKindProducer))
	if sc := span.SpanContext(); sc.IsValid() {
		x.in.SpanID = sc.SpanID().String()
	}
	span.End()
	if err := g.d.Publisher.Publish(x.in); err != nil {
		g.publishErrors.Add(1)
		g.log.Error("interaction not queued for publishing", "interaction", x.in.ID, "trial", x.in.Trial, "err", err)
	}
}

// newID returns a time-ordered id: 12 hex digits of Unix milliseconds, then 20 of
// randomness.
func (g *Gateway) newID() string {
	var b [16]byte
	ms := uint64(g.clk.Now().UnixMilli())
	r1, r2 := g.rnd(), g.rnd()
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	for i := range 8 {
		b[6+i] = byte(r1 >> (56 - 8*i))
	}
	b[14], b[15] = byte(r2>>8), byte(r2)
	return "int_" + hex.EncodeToString(b[:])
}

// traceID honours an incoming W3C traceparent, or starts a new trace.
func (g *Gateway) traceID(r *http.Request) string {
	if tp := r.Header.Get("traceparent"); len(tp) == 55 && tp[2] == '-' && tp[35] == '-' {
		id := tp[3:35]
		if events.TraceParent(id) != "" && id != "00000000000000000000000000000000" {
			return id
		}
	}
	var b [16]byte
	r1, r2 := g.rnd(), g.rnd()
	for i := range 8 {
		b[i], b[8+i] = byte(r1>>(56-8*i)), byte(r2>>(56-8*i))
	}
	return hex.EncodeToString(b[:])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logDecision writes the decision log line of a decided request.
func (g *Gateway) logDecision(ctx context.Context, x *exchange) {
	if g.d.DecisionLog == nil || x.req == nil || x.in.Status == "" {
		return
	}
	d := x.in.Decision
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	g.d.DecisionLog.LogAttrs(ctx, slog.LevelInfo, "decision",
		slog.String("trial", x.in.Trial), slog.String("interaction", x.in.ID), slog.Bool("allow", d.Allow),
		slog.Any("reasons", codes), slog.String("policy_revision", d.PolicyRevision), slog.String("input_hash", d.InputHash),
		slog.Bool("memo_hit", d.MemoHit), slog.Int64("eval_us", d.EvalMicros), slog.String("stage", x.in.Stage),
		slog.String("model", x.in.Model), slog.String("route", x.in.Route), slog.String("status", x.in.Status),
		slog.Int("http_status", x.in.HTTPStatus))
}
