package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Pooled buffers larger than this are dropped instead of reused.
const maxPooledBytes = 1 << 20

// Fixed fragments of completion JSON.
const (
	idPrefix        = "chatcmpl-"
	chunkObject     = `","object":"chat.completion.chunk","created":`
	completionObj   = `","object":"chat.completion","created":`
	modelField      = `,"model":`
	choicesOpen     = `,"choices":[`
	firstDeltaOpen  = `{"index":0,"delta":{"role":"assistant","content":"`
	deltaOpen       = `{"index":0,"delta":{"content":"`
	deltaClose      = `"},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	finishOpen      = `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`
	finishClose     = `"}]}` + "\n\n"
	messageOpen     = `{"index":0,"message":{"role":"assistant","content":"`
	messageClose    = `","refusal":null},"logprobs":null,"finish_reason":"`
	completionClose = `"}],`
	doneEvent       = "data: [DONE]\n\n"
)

// reqState is the per-request scratch space, pooled.
type reqState struct {
	body  []byte
	req   chatRequest
	out   []byte
	text  []byte  // plain answer text
	plain segment // plain answer tokens
	timer *time.Timer
	id    [len(idPrefix) + 24]byte
}

func newReqState() *reqState {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &reqState{body: make([]byte, 0, 4096), out: make([]byte, 0, 4096), timer: t}
}

func (s *Server) putState(st *reqState) {
	st.timer.Stop()
	if cap(st.body) > maxPooledBytes || cap(st.out) > maxPooledBytes || cap(st.plain.toks) > 4096 || cap(st.req.Messages) > 1024 {
		return
	}
	s.state.Put(st)
}

// readBody reads at most limit bytes of r into dst.
func readBody(dst []byte, r io.Reader, limit int64) ([]byte, error) {
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, ErrBodyTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// wait blocks for d or until ctx ends; it reports whether d passed.
func (st *reqState) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	st.timer.Reset(d)
	select {
	case <-ctx.Done():
		st.timer.Stop()
		return false
	case <-st.timer.C:
		return true
	}
}

// setID writes "chatcmpl-" + FNV-1a of the body + the request sequence number.
func (st *reqState) setID(seq uint64) []byte {
	h := uint64(14695981039346656037)
	for _, c := range st.body {
		h ^= uint64(c)
		h *= 1099511628211
	}
	b := st.id[:0]
	b = append(b, idPrefix...)
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[(h>>uint(i))&0xf])
	}
	for i := 28; i >= 0; i -= 4 {
		b = append(b, hexDigits[(seq>>uint(i))&0xf])
	}
	return b
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, typeInvalidRequest, codeBodyTooLarge, tooLargeMsg(limit))
		return
	}
	st := s.state.Get().(*reqState)
	defer s.putState(st)

	var err error
	st.body, err = readBody(st.body, r.Body, limit)
	if errors.Is(err, ErrBodyTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, typeInvalidRequest, codeBodyTooLarge, tooLargeMsg(limit))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, codeInvalidJSON, "reading the request body failed")
		return
	}
	req := &st.req
	if err := req.decode(st.body); err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, codeInvalidJSON, err.Error())
		return
	}
	prompt := req.lastUser()
	d, err := parseDirectives(prompt)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeInvalidRequest, codeInvalidDirective, err.Error())
		return
	}
	model := req.Model
	if model == "" {
		model = s.cfg.Models[0]
	}

	ctx := r.Context()
	if !st.wait(ctx, s.cfg.Delay+d.slow) {
		return
	}
	if d.status != 0 {
		writeError(w, d.status, errorType(d.status), codeSimulated,
			"simulated upstream error (HTTP "+strconv.Itoa(d.status)+") requested by [sim:error]")
		return
	}

	var a answer
	if d.pii {
		a.add(&s.pii)
	}
	if d.unsafe {
		a.add(&s.unsafe)
	}
	if !d.hasContent() {
		if len(s.fixed.toks) > 0 {
			a.add(&s.fixed)
		} else {
			st.text = appendPlain(st.text[:0], model, prompt)
			st.plain.toks = appendTokens(st.plain.toks[:0], string(st.text))
			a.add(&st.plain)
		}
	}
	a.finalize(d.tokens, req.maxTokens())

	// The common head of the completion object or of every chunk.
	out := st.out[:0]
	if req.Stream {
		out = append(out, "data: "...)
	}
	out = append(out, `{"id":"`...)
	out = append(out, st.setID(s.seq.Add(1))...)
	if req.Stream {
		out = append(out, chunkObject...)
	} else {
		out = append(out, completionObj...)
	}
	out = strconv.AppendInt(out, s.clk.Now().Unix(), 10)
	out = append(out, modelField...)
	out = appendQuoted(out, model)
	out = append(out, choicesOpen...)

	if req.Stream {
		st.out = s.stream(ctx, w, r, st, out, &a, &d, req.StreamOptions.IncludeUsage, req.promptTokens())
		return
	}
	out = append(out, messageOpen...)
	if q, ok := a.whole(); ok {
		out = append(out, q...)
	} else {
		it := tokenIter{a: &a}
		for tok, space, ok := it.next(); ok; tok, space, ok = it.next() {
			if space {
				out = append(out, ' ')
			}
			out = appendEscaped(out, tok)
		}
	}
	out = append(out, messageClose...)
	out = append(out, a.finish...)
	out = append(out, completionClose...)
	out = appendUsage(out, req.promptTokens(), a.limit)
	out = append(out, "}\n"...)
	st.out = out
	writeJSON(w, out)
}

func tooLargeMsg(limit int64) string {
	return "request body larger than " + strconv.FormatInt(limit, 10) + " bytes"
}

// stream writes the answer as server-sent events, one flushed chunk per token.
// head is the shared "data: {...,"choices":[" prefix. It returns the buffer for reuse.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, st *reqState,
	head []byte, a *answer, d *directives, includeUsage bool, promptTokens int) []byte {
	h := w.Header()
	h["Content-Type"] = hdrEventStream
	h["Cache-Control"] = hdrNoCache
	h["X-Accel-Buffering"] = hdrNoBuffering
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	done := ctx.Done()
	n := len(head)
	out := head
	events := 0

	send := func() bool {
		if events == d.cut {
			abort(rc, r)
			return false
		}
		select {
		case <-done:
			return false
		default:
		}
		if _, err := w.Write(out); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			return false
		}
		events++
		return true
	}

	it := tokenIter{a: a}
	for tok, space, ok := it.next(); ok; tok, space, ok = it.next() {
		first := it.emitted == 1
		if !first && d.gap > 0 && !st.wait(ctx, d.gap) {
			return out
		}
		out = out[:n]
		if first {
			out = append(out, firstDeltaOpen...)
		} else {
			out = append(out, deltaOpen...)
		}
		if space {
			out = append(out, ' ')
		}
		out = appendEscaped(out, tok)
		out = append(out, deltaClose...)
		if !send() {
			return out
		}
	}
	out = append(out[:n], finishOpen...)
	out = append(out, a.finish...)
	out = append(out, finishClose...)
	if !send() {
		return out
	}
	if includeUsage {
		out = append(out[:n], "],"...)
		out = appendUsage(out, promptTokens, a.limit)
		out = append(out, "}\n\n"...)
		if !send() {
			return out
		}
	}
	if d.cut >= 0 {
		abort(rc, r)
		return out
	}
	out = append(out[:0], doneEvent...)
	_, _ = w.Write(out)
	_ = rc.Flush()
	return out
}

// abort drops the connection mid-stream so the client sees no [DONE]: it closes
// a hijacked HTTP/1 connection, and otherwise (HTTP/2, test recorders) panics with
// http.ErrAbortHandler, net/http's sanctioned way to abort a response, which the
// server recovers without logging.
func abort(rc *http.ResponseController, r *http.Request) {
	_ = rc.Flush()
	if r.ProtoMajor == 1 {
		if conn, _, err := rc.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
