package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// target is one system under test as the load generator sees it.
type target struct {
	url        string // the chat completions URL
	key        string // bearer key
	wantHeader string // a response header every answer must carry ("" for none)
	client     *http.Client
}

// maxClientConns bounds the load generator's connections to one server, as a
// client's pool would: when answers slow down, an open loop queues at the client
// (and that wait counts, from the scheduled send time) instead of opening
// thousands of connections whose buffers would then dominate the server's memory.
// 1024 covers the 1 s answer loads (500 in flight).
const maxClientConns = 1024

// newClient is the load generator's HTTP client: keep-alive connections for
// every concurrent request up to maxClientConns, no compression (as OpenAI SDKs
// on loopback).
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxConnsPerHost:     maxClientConns,
		MaxIdleConnsPerHost: maxClientConns,
		IdleConnTimeout:     120 * time.Second,
		DisableCompression:  true,
	}}
}

// loadSpec is one load: closed loop at a concurrency or open loop at a rate.
type loadSpec struct {
	Concurrency int     // closed loop when > 0
	Rate        float64 // open loop (requests/s) when > 0
	Stream      bool
	Slow        bool // against the simulator variant with the 1 s answer
}

func (l loadSpec) String() string {
	s := ""
	if l.Concurrency > 0 {
		s = fmt.Sprintf("closed c=%d", l.Concurrency)
	} else {
		s = fmt.Sprintf("open %g/s", l.Rate)
	}
	if l.Stream {
		s += " stream"
	} else {
		s += " plain"
	}
	if l.Slow {
		s += ", 1 s answer"
	}
	return s
}

// outcome is what one load run against one target measured.
type outcome struct {
	Latency samples // send (closed) or scheduled send (open) to the end of the answer
	TTFT    samples // to the first content chunk, streams only
	OK      int
	Errors  int
	Sample  []string // the first few error messages
	Sent    int
	Elapsed time.Duration // first send to last answer
}

func (o *outcome) fail(err error) {
	o.Errors++
	if len(o.Sample) < 5 {
		o.Sample = append(o.Sample, err.Error())
	}
}

func (o *outcome) merge(p outcome) {
	o.Latency = append(o.Latency, p.Latency...)
	o.TTFT = append(o.TTFT, p.TTFT...)
	o.OK += p.OK
	o.Sent += p.Sent
	for _, s := range p.Sample {
		if len(o.Sample) < 5 {
			o.Sample = append(o.Sample, s)
		}
	}
	o.Errors += p.Errors
	o.Elapsed += p.Elapsed
}

// bodies are pre-encoded request bodies, one per simulated end user.
type bodies struct{ plain, stream [][]byte }

func makeBodies(model string, users int) bodies {
	var b bodies
	for i := range users {
		for _, stream := range []bool{false, true} {
			body := fmt.Appendf(nil, `{"model":%q,"user":"user-%04d","max_tokens":256,"stream":%t,"messages":[`+
				`{"role":"system","content":"You are a concise assistant for a municipal services pilot."},`+
				`{"role":"user","content":"What are the opening hours of the central library on public holidays? Answer in one sentence."}]}`,
				model, i, stream)
			if stream {
				b.stream = append(b.stream, body)
			} else {
				b.plain = append(b.plain, body)
			}
		}
	}
	return b
}

func (b bodies) pick(stream bool, i int) []byte {
	if stream {
		return b.stream[i%len(b.stream)]
	}
	return b.plain[i%len(b.plain)]
}

// checker validates every answer against the simulator's fixed answer.
type checker struct {
	answer string
	deltas []string // the content of each stream chunk, in order, as the simulator sends it
}

type chatAnswer struct {
	Object  string `json:"object"`
	Choices []struct {
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// checkCompletion checks a non-streamed answer.
func (c *checker) checkCompletion(body []byte) error {
	var a chatAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("answer is not JSON: %v: %.200q", err, body)
	}
	if a.Object != "chat.completion" || len(a.Choices) != 1 || a.Choices[0].Message == nil {
		return fmt.Errorf("answer is not a chat.completion with one choice: %.200q", body)
	}
	if got := a.Choices[0].Message.Content; got != c.answer {
		return fmt.Errorf("content %q, want %q", got, c.answer)
	}
	if a.Choices[0].FinishReason == nil || *a.Choices[0].FinishReason != "stop" {
		return fmt.Errorf("finish_reason is not stop: %.200q", body)
	}
	return nil
}

// readStream reads and checks a server-sent event stream: one chat.completion.chunk
// per event, the deltas exactly the expected chunks in order, a finish chunk,
// then [DONE] and nothing after it. first is called at the first content chunk.
func (c *checker) readStream(r io.Reader, first func()) error {
	br := bufio.NewReaderSize(r, 16<<10)
	var deltas []string
	var data []byte
	done, finished := false, false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) == 0 {
				break
			}
			return fmt.Errorf("reading stream: %v", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			if data != nil {
				return fmt.Errorf("two data lines in one event (chunk boundary lost): %.200q", line)
			}
			d, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok {
				return fmt.Errorf("unexpected stream line %.200q", line)
			}
			data = append([]byte{}, d...)
			continue
		}
		if data == nil {
			continue // stray blank line
		}
		if done {
			return fmt.Errorf("event after [DONE]: %.200q", data)
		}
		if string(data) == "[DONE]" {
			done, data = true, nil
			continue
		}
		var a chatAnswer
		if err := json.Unmarshal(data, &a); err != nil || a.Object != "chat.completion.chunk" || len(a.Choices) != 1 {
			return fmt.Errorf("event is not a chat.completion.chunk: %.200q", data)
		}
		ch := a.Choices[0]
		if ch.Delta != nil && ch.Delta.Content != nil && *ch.Delta.Content != "" {
			if finished {
				return errors.New("content after the finish chunk")
			}
			if len(deltas) == 0 {
				first()
			}
			deltas = append(deltas, *ch.Delta.Content)
		}
		if ch.FinishReason != nil {
			if *ch.FinishReason != "stop" {
				return fmt.Errorf("finish_reason %q", *ch.FinishReason)
			}
			finished = true
		}
		data = nil
	}
	if !done {
		return errors.New("stream ended without [DONE]")
	}
	if !finished {
		return errors.New("stream has no finish chunk")
	}
	if len(deltas) != len(c.deltas) {
		return fmt.Errorf("%d content chunks, want %d", len(deltas), len(c.deltas))
	}
	for i := range deltas {
		if deltas[i] != c.deltas[i] {
			return fmt.Errorf("chunk %d is %q, want %q (order or boundaries changed)", i, deltas[i], c.deltas[i])
		}
	}
	return nil
}

// do sends one request and checks its answer; latency and TTFT count from t0.
func (t *target) do(ctx context.Context, body []byte, stream bool, chk *checker, t0 time.Time) (lat, ttft time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if t.wantHeader != "" && resp.Header.Get(t.wantHeader) == "" {
		return 0, 0, fmt.Errorf("answer without %s", t.wantHeader)
	}
	if stream {
		err = chk.readStream(resp.Body, func() { ttft = time.Since(t0) })
	} else {
		var b []byte
		if b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err == nil {
			err = chk.checkCompletion(b)
		}
	}
	return time.Since(t0), ttft, err
}

// requestTimeout bounds one request of a load.
func (l loadSpec) requestTimeout() time.Duration {
	if l.Slow {
		return slowDelay + 10*time.Second
	}
	return 10 * time.Second
}

// runClosed keeps Concurrency requests in flight for d.
func runClosed(ctx context.Context, t *target, l loadSpec, d time.Duration, chk *checker, b bodies) outcome {
	var next atomic.Int64
	outs := make([]outcome, l.Concurrency)
	start := time.Now()
	deadline := start.Add(d)
	var last atomic.Int64 // ns after start of the last answer
	var wg sync.WaitGroup
	for w := range l.Concurrency {
		wg.Go(func() {
			o := &outs[w]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1))
				rctx, cancel := context.WithTimeout(ctx, l.requestTimeout())
				t0 := time.Now()
				lat, ttft, err := t.do(rctx, b.pick(l.Stream, i), l.Stream, chk, t0)
				cancel()
				o.Sent++
				if err != nil {
					o.fail(err)
				} else {
					o.OK++
					o.Latency = append(o.Latency, lat)
					if l.Stream {
						o.TTFT = append(o.TTFT, ttft)
					}
				}
				end := int64(time.Since(start))
				for {
					old := last.Load()
					if end <= old || last.CompareAndSwap(old, end) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	var total outcome
	for _, o := range outs {
		total.merge(o)
	}
	total.Elapsed = time.Duration(last.Load())
	return total
}

// runOpen sends Rate requests per second for d on a fixed schedule, whatever the
// answers do; latency counts from each request's scheduled send time, so a queue
// in the server (or in the generator) cannot hide.
func runOpen(ctx context.Context, t *target, l loadSpec, d time.Duration, chk *checker, b bodies) outcome {
	n := max(int(l.Rate*d.Seconds()), 1)
	interval := time.Duration(float64(time.Second) / l.Rate)
	type res struct {
		lat, ttft time.Duration
		err       error
		end       time.Time
	}
	results := make([]res, n)
	var wg sync.WaitGroup
	start := time.Now().Add(2 * time.Millisecond)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sched := start.Add(time.Duration(i) * interval)
		if wait := time.Until(sched); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			rctx, cancel := context.WithDeadline(ctx, sched.Add(l.requestTimeout()))
			defer cancel()
			lat, ttft, err := t.do(rctx, b.pick(l.Stream, i), l.Stream, chk, sched)
			results[i] = res{lat, ttft, err, time.Now()}
		})
	}
	wg.Wait()
	var o outcome
	var first, last time.Time
	for _, r := range results {
		if r.end.IsZero() {
			continue // cancelled before it was sent
		}
		o.Sent++
		if r.end.After(last) {
			last = r.end
		}
		if first.IsZero() || r.end.Before(first) {
			first = r.end
		}
		if r.err != nil {
			o.fail(r.err)
			continue
		}
		o.OK++
		o.Latency = append(o.Latency, r.lat)
		if l.Stream {
			o.TTFT = append(o.TTFT, r.ttft)
		}
	}
	// Throughput is answers over the span they arrived in (plus one interval, so a
	// kept rate reads as the rate), which leaves out the answers' own latency.
	if o.Sent > 0 {
		o.Elapsed = last.Sub(first) + interval
	}
	return o
}

// run dispatches on the kind of load.
func (l loadSpec) run(ctx context.Context, t *target, d time.Duration, chk *checker, b bodies) outcome {
	if l.Concurrency > 0 {
		return runClosed(ctx, t, l, d, chk, b)
	}
	return runOpen(ctx, t, l, d, chk, b)
}
