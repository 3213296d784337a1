package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/stagegate/stagegate/events"
)

// maxCapture bounds how much of a streamed answer is kept for the interaction
// record; the client still gets all of it.
const maxCapture = 8 << 20

// call sends the request to the assigned upstream. The returned cancel must be
// called when the body is done with.
func (g *Gateway) call(x *exchange) (*http.Response, context.CancelFunc, error) {
	body, err := x.req.upstreamBody(x.upstream.modelID(), x.decision.Obligations.MaxTokens, x.user)
	if err != nil {
		return nil, nil, Error(http.StatusInternalServerError, fmt.Errorf("encode upstream request: %w", err))
	}
	timeout := x.upstream.Timeout
	if timeout <= 0 || timeout > g.cfg.UpstreamTimeout {
		timeout = g.cfg.UpstreamTimeout
	}
	// The client's context: a client that goes away cancels the upstream call.
	ctx, cancel := context.WithTimeout(x.r.Context(), timeout)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, x.upstream.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: %s: %v", ErrUpstream, x.upstream.Name, err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	if x.req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	if x.upstream.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+x.upstream.APIKey)
	}
	if tp := events.TraceParent(x.in.TraceID); tp != "" {
		hreq.Header.Set("traceparent", tp)
	}
	upStart := g.clk.Now()
	resp, err := g.client.Do(hreq)
	if err != nil {
		cancel()
		x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
		return nil, nil, upstreamError(x, ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		msg := upstreamErrorMessage(resp)
		x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			// The model rejected the request itself: the client should see why.
			return nil, nil, Error(resp.StatusCode, fmt.Errorf("%w: model %s rejected the request: %s", ErrMalformed, x.upstream.Name, msg))
		}
		return nil, nil, Error(http.StatusBadGateway, fmt.Errorf("%w: model %s answered %d: %s", ErrUpstream, x.upstream.Name, resp.StatusCode, msg))
	}
	return resp, cancel, nil
}

func (u *Upstream) modelID() string {
	if u.Model != "" {
		return u.Model
	}
	return u.Name
}

func upstreamError(x *exchange, ctx context.Context, err error) error {
	switch {
	case x.r.Context().Err() != nil:
		return fmt.Errorf("client went away: %w", context.Canceled)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return Error(http.StatusGatewayTimeout, fmt.Errorf("%w: model %s", ErrUpstreamTimeout, x.upstream.Name))
	}
	return Error(http.StatusBadGateway, fmt.Errorf("%w: model %s unreachable", ErrUpstream, x.upstream.Name))
}

// upstreamErrorMessage extracts a short message from an error body.
func upstreamErrorMessage(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e errorBody
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return http.StatusText(resp.StatusCode)
}

// proxy makes a non-streaming call and answers with the upstream's body as is.
func (g *Gateway) proxy(x *exchange) error {
	upStart := g.clk.Now()
	resp, cancel, err := g.call(x)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, g.cfg.MaxResponseBytes+1))
	x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
	if err != nil {
		return upstreamError(x, x.r.Context(), err)
	}
	if int64(len(body)) > g.cfg.MaxResponseBytes {
		return Error(http.StatusBadGateway, fmt.Errorf("%w: model %s answered more than %d bytes", ErrUpstream, x.upstream.Name, g.cfg.MaxResponseBytes))
	}
	if n := x.decision.Obligations.Notice; n != "" {
		if nb, err := withNotice(body, n); err == nil {
			body = nb
		} else {
			g.log.Warn("disclosure notice not added", "interaction", x.in.ID, "err", err)
		}
	}
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(http.StatusOK)
	x.wrote = true
	if _, err := x.w.Write(body); err != nil {
		return fmt.Errorf("write answer: %w", context.Canceled)
	}
	// The client has the whole answer now; reading it for the record costs no latency.
	recordCompletion(x.in, body)
	return nil
}

// completion is the part of a chat.completion (or chunk) the record keeps.
type completion struct {
	ID      string `json:"id"`
	Choices []struct {
		Message      *struct{ Content string } `json:"message"`
		Delta        *struct{ Content string } `json:"delta"`
		FinishReason string                    `json:"finish_reason"`
	} `json:"choices"`
	Usage *events.Usage `json:"usage"`
}

func recordCompletion(in *events.Interaction, body []byte) {
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		in.Response.Error = "answer is not a chat completion: " + err.Error()
		return
	}
	in.Response.ID = c.ID
	if len(c.Choices) > 0 {
		if c.Choices[0].Message != nil {
			in.Response.Content = c.Choices[0].Message.Content
		}
		in.Response.FinishReason = c.Choices[0].FinishReason
	}
	if c.Usage != nil {
		in.Response.Usage = *c.Usage
	}
}

// stream relays server-sent events as they arrive: each event is written and
// flushed on its own, never buffered whole.
func (g *Gateway) stream(x *exchange) error {
	g.streams.Add(1)
	upStart := g.clk.Now()
	resp, cancel, err := g.call(x)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()

	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	x.w.WriteHeader(http.StatusOK)
	x.wrote = true
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()

	var capture bytes.Buffer // data payloads, one per line, parsed after the client is served
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	done, pending := false, false
	notice := x.decision.Obligations.Notice
	var readErr error
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			data, isData := bytes.CutPrefix(line, []byte("data:"))
			if isData {
				data = bytes.TrimSpace(data)
				isDone := string(data) == "[DONE]"
				done = done || isDone
				if notice != "" && !isDone {
					// The notice goes ahead of the model's first chunk.
					ev := noticeChunk(data, notice)
					notice = ""
					if _, werr := x.w.Write(ev); werr != nil {
						return fmt.Errorf("write stream: %w", context.Canceled)
					}
					capture.Write(bytes.TrimSpace(ev[len("data: "):]))
					capture.WriteByte('\n')
				}
				if !isDone && capture.Len()+len(data) < maxCapture {
					if x.in.Latency.FirstTokenMS == 0 {
						x.in.Latency.FirstTokenMS = ms(g.clk.Now().Sub(x.start))
					}
					capture.Write(data)
					capture.WriteByte('\n')
				}
			}
			if _, werr := x.w.Write(line); werr != nil {
				return fmt.Errorf("write stream: %w", context.Canceled)
			}
			pending = true
			// A blank line ends an event: send it now.
			if len(bytes.TrimSpace(line)) == 0 && pending {
				if ferr := rc.Flush(); ferr != nil {
					return fmt.Errorf("flush stream: %w", context.Canceled)
				}
				pending = false
			}
		}
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: relayed in pieces
		}
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	if pending {
		_ = rc.Flush()
	}
	x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
	recordStream(x.in, capture.Bytes())
	if !done {
		// The stream broke: tell the client in a form OpenAI SDKs raise as an error.
		if x.r.Context().Err() != nil {
			return fmt.Errorf("client went away: %w", context.Canceled)
		}
		msg := "the model's stream ended before it finished"
		if readErr != nil && errors.Is(readErr, context.DeadlineExceeded) {
			msg = "the model's stream timed out"
		}
		ev, _ := json.Marshal(errorBody{Error: errorDetail{Message: msg, Type: "server_error", Code: "upstream_stream_broken"}})
		_, _ = fmt.Fprintf(x.w, "data: %s\n\n", ev)
		_ = rc.Flush()
		x.in.Status = events.StatusPartial
		return Error(http.StatusBadGateway, fmt.Errorf("%w: %s", ErrUpstream, msg))
	}
	return nil
}

// recordStream joins the deltas of captured chunks into the interaction's response.
func recordStream(in *events.Interaction, capture []byte) {
	var content bytes.Buffer
	chunks := 0
	for len(capture) > 0 {
		line, rest, _ := bytes.Cut(capture, []byte{'\n'})
		capture = rest
		var c completion
		if json.Unmarshal(line, &c) != nil {
			continue
		}
		if in.Response.ID == "" {
			in.Response.ID = c.ID
		}
		for _, ch := range c.Choices {
			if ch.Delta != nil && ch.Delta.Content != "" {
				content.WriteString(ch.Delta.Content)
				chunks++
			}
			if ch.FinishReason != "" {
				in.Response.FinishReason = ch.FinishReason
			}
		}
		if c.Usage != nil {
			in.Response.Usage = *c.Usage
		}
	}
	in.Response.Content = content.String()
	if in.Response.Usage.CompletionTokens == 0 {
		in.Response.Usage.CompletionTokens = chunks
	}
}
