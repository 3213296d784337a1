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
	"sync/atomic"
	"time"

	"github.com/stagegate/stagegate/events"
)

// maxCapture bounds how much of a streamed answer is kept for the interaction
// record; the client still gets all of it.
const maxCapture = 8 << 20

func (u *Upstream) modelID() string {
	if u.Model != "" {
		return u.Model
	}
	return u.Name
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
	defer func() { endUpstreamSpan(x, nil) }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, g.cfg.MaxResponseBytes+1))
	x.in.Latency.UpstreamMS = ms(g.clk.Now().Sub(upStart))
	if err != nil {
		if x.r.Context().Err() != nil {
			return fmt.Errorf("client went away: %w", context.Canceled)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return Error(http.StatusGatewayTimeout, fmt.Errorf("%w: model %s", ErrUpstreamTimeout, x.upstream.Name))
		}
		return Error(http.StatusBadGateway, fmt.Errorf("%w: model %s: reading the answer: %v", ErrUpstream, x.upstream.Name, err))
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
	h["Content-Type"] = hdrJSON
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
	if err := decodeCompletion(body, &c); err != nil {
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
	defer func() { endUpstreamSpan(x, nil) }()

	g.commitSSE(x)
	x.wrote = true
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()

	// A model that answers the headers but never the first chunk is cut off.
	var firstToken *time.Timer
	var firstTokenTimedOut atomic.Bool
	if ftt := x.upstream.FirstTokenTimeout; ftt > 0 {
		firstToken = time.AfterFunc(ftt, func() { firstTokenTimedOut.Store(true); cancel() })
		defer firstToken.Stop()
	}

	capture := getCapture() // data payloads, one per line, parsed after the client is served
	defer putCapture(capture)
	br := getStreamReader(resp.Body)
	defer putStreamReader(br)
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
						x.upSpan.AddEvent("gen_ai.first_token")
						if firstToken != nil {
							firstToken.Stop()
						}
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
		switch {
		case firstTokenTimedOut.Load():
			msg = "the model sent no first token in time"
		case readErr != nil && errors.Is(readErr, context.DeadlineExceeded):
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
	var c completion // reused: decodeCompletion keeps its choices array
	for len(capture) > 0 {
		line, rest, _ := bytes.Cut(capture, []byte{'\n'})
		capture = rest
		if decodeCompletion(line, &c) != nil {
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
