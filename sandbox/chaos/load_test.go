//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is what the client saw of one request.
type result struct {
	phase   string
	user    string
	pii     bool // the prompt asked the simulator for an answer with personal data
	stream  bool
	status  int    // 0: no HTTP answer at all
	id      string // X-Stagegate-Interaction of a 200
	model   string // X-Stagegate-Model
	done    bool   // a whole answer: a chat.completion, or a stream up to [DONE]
	broken  bool   // a stream that ended with the documented error event
	errText string
	latency time.Duration
}

// loader sends requests at a steady rate and keeps every result.
type loader struct {
	url    string
	key    string
	rate   int
	client *http.Client
	phase  atomic.Pointer[string]

	mu      sync.Mutex
	results []result
	wg      sync.WaitGroup
	sem     chan struct{}
	seq     atomic.Uint64
	skipped atomic.Uint64 // ticks with too many requests already in flight
}

func newLoader(url, key string, rate int) *loader {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	l := &loader{url: url, key: key, rate: rate, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, sem: make(chan struct{}, 1024)}
	p := "start"
	l.phase.Store(&p)
	return l
}

func (l *loader) setPhase(p string) { l.phase.Store(&p) }

// run sends rate requests per second until ctx ends, then waits for the
// requests in flight.
func (l *loader) run(ctx context.Context) {
	interval := time.Second / time.Duration(l.rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.wg.Wait()
			return
		case <-t.C:
		}
		select {
		case l.sem <- struct{}{}:
		default:
			l.skipped.Add(1)
			continue
		}
		n := l.seq.Add(1)
		phase := *l.phase.Load()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.sem }()
			r := l.one(n, phase)
			l.mu.Lock()
			l.results = append(l.results, r)
			l.mu.Unlock()
		}()
	}
}

// one sends request n: one in ten asks for an answer with personal data, one
// in four streams; 300 users, half of them on the candidate.
func (l *loader) one(n uint64, phase string) (r result) {
	r = result{phase: phase, user: fmt.Sprintf("chaos-user-%03d", n%300), pii: n%10 == 3, stream: n%4 == 1}
	content := fmt.Sprintf("Request %d: what are the opening hours of the library?", n)
	if r.pii {
		content = fmt.Sprintf("[sim:pii] Request %d: who is on call tonight?", n)
	}
	body, _ := json.Marshal(map[string]any{
		"model": "chaos", "user": r.user, "stream": r.stream,
		"messages": []map[string]string{{"role": "user", "content": content}},
	})
	req, _ := http.NewRequest(http.MethodPost, l.url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	defer func() { r.latency = time.Since(start) }()
	resp, err := l.client.Do(req)
	if err != nil {
		r.errText = err.Error()
		return r
	}
	defer resp.Body.Close()
	r.status, r.model = resp.StatusCode, resp.Header.Get("X-Stagegate-Model")
	if resp.StatusCode == http.StatusOK {
		r.id = resp.Header.Get("X-Stagegate-Interaction")
	}
	if !r.stream || resp.StatusCode != http.StatusOK {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case err != nil:
			r.errText = "reading the answer: " + err.Error()
		case resp.StatusCode == http.StatusOK && bytes.Contains(raw, []byte(`"choices"`)):
			r.done = true
		case resp.StatusCode != http.StatusOK:
			r.errText = strings.TrimSpace(string(raw))
		}
		return r
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		data = strings.TrimSpace(data)
		switch {
		case data == "[DONE]":
			r.done = true
		case strings.HasPrefix(data, `{"error"`):
			r.broken = true
			r.errText = data
		}
	}
	if err := sc.Err(); err != nil && !r.done {
		r.errText = "reading the stream: " + err.Error()
	}
	return r
}

// snapshot returns the results so far.
func (l *loader) snapshot() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.results...)
}
