package deploy

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
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a model check.
const (
	// DefaultCheckTimeout bounds each request of a check.
	DefaultCheckTimeout = 20 * time.Second
	// maxCheckBody bounds a response body read by a check.
	maxCheckBody = 1 << 20
	// checkPrompt is the tiny prompt of the completion checks.
	checkPrompt = "Reply with the single word OK."
)

// Names of the checks, in the order they run.
const (
	CheckList       = "list models"
	CheckCompletion = "completion"
	CheckStream     = "streamed completion"
)

// CheckStep is the result of one check.
type CheckStep struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail says in plain words what happened (what failed and what to look at).
	Detail string `json:"detail"`
	Millis int64  `json:"ms"`
}

// CheckReport is the outcome of CheckModel.
type CheckReport struct {
	BaseURL string      `json:"base_url"`
	Model   string      `json:"model"`
	OK      bool        `json:"ok"`
	Steps   []CheckStep `json:"steps"`
}

// String renders the report for a terminal, one line per check.
func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s at %s: ", r.Model, r.BaseURL)
	if r.OK {
		b.WriteString("all checks passed\n")
	} else {
		b.WriteString("CHECK FAILED\n")
	}
	for _, s := range r.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-20s %s (%d ms)\n", mark, s.Name, s.Detail, s.Millis)
	}
	return b.String()
}

var checkClient = &http.Client{Timeout: DefaultCheckTimeout}

// CheckModel checks that baseURL (ending in /v1) serves model the way the gateway
// needs: GET /models lists it, a tiny chat completion answers, and the same
// request streamed arrives as server-sent events ending in [DONE]. apiKey, when not
// empty, is sent as a bearer token and never appears in the report. The error is
// nil when every check passed, else wraps ErrCheckFailed and says what failed.
func CheckModel(ctx context.Context, baseURL, apiKey, model string) (CheckReport, error) {
	base := strings.TrimRight(baseURL, "/")
	r := CheckReport{BaseURL: base, Model: model, OK: true}
	c := checker{base: base, key: apiKey, model: model}
	reachable := true
	for _, step := range []struct {
		name string
		run  func(ctx context.Context) (string, error)
	}{{CheckList, c.list}, {CheckCompletion, c.completion}, {CheckStream, c.stream}} {
		if !reachable {
			r.Steps = append(r.Steps, CheckStep{Name: step.name, Detail: "skipped: the server could not be reached"})
			r.OK = false
			continue
		}
		start := time.Now()
		detail, err := step.run(ctx)
		s := CheckStep{Name: step.name, OK: err == nil, Detail: detail, Millis: time.Since(start).Milliseconds()}
		if err != nil {
			s.Detail, r.OK = err.Error(), false
			var ue unreachable
			if errors.As(err, &ue) {
				reachable = false
			}
		}
		r.Steps = append(r.Steps, s)
	}
	if r.OK {
		return r, nil
	}
	var failed []string
	for _, s := range r.Steps {
		if !s.OK {
			failed = append(failed, s.Name+": "+s.Detail)
		}
	}
	return r, fmt.Errorf("%w: model %s at %s: %s", ErrCheckFailed, model, base, strings.Join(failed, "; "))
}

// unreachable marks a failure to connect at all.
type unreachable struct{ err error }

func (u unreachable) Error() string { return u.err.Error() }

type checker struct{ base, key, model string }

// do sends one request and returns the response with its body read (bounded).
func (c checker) do(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultCheckTimeout)
	defer cancel()
	url := c.base + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, unreachable{fmt.Errorf("the base URL %q does not make a valid request URL: %v", c.base, err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := checkClient.Do(req)
	if err != nil {
		return nil, nil, unreachable{fmt.Errorf("could not reach %s %s: %v; is the server running, and does the base URL end in /v1?", method, url, redact(err, c.key))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody+1))
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: the answer broke off: %v", method, url, err)
	}
	if len(raw) > maxCheckBody {
		return resp, nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", method, url, maxCheckBody)
	}
	if err := statusProblem(method, url, resp.StatusCode, raw); err != nil {
		return resp, raw, err
	}
	return resp, raw, nil
}

// statusProblem explains a non-200 answer.
func statusProblem(method, url string, code int, body []byte) error {
	switch {
	case code == http.StatusOK:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s %s answered HTTP %d: the server refused the credentials; check the API key the registration refers to", method, url, code)
	case code == http.StatusNotFound:
		return fmt.Errorf("%s %s answered HTTP 404: the base URL is probably wrong (it should end in /v1) or the model does not exist there", method, url)
	}
	return fmt.Errorf("%s %s answered HTTP %d: %s", method, url, code, snippet(body))
}

// snippet is the start of a body, for messages.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if !utf8.ValidString(s) {
		return "(binary body)"
	}
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// redact keeps an API key out of an error message.
func redact(err error, key string) string {
	msg := err.Error()
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[api key]")
	}
	return msg
}

func (c checker) list(ctx context.Context) (string, error) {
	_, raw, err := c.do(ctx, http.MethodGet, "/models", nil)
	if err != nil {
		return "", err
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &list); err != nil || list.Data == nil {
		return "", fmt.Errorf("GET %s/models did not answer an OpenAI model list ({\"data\":[{\"id\":...}]}): %s", c.base, snippet(raw))
	}
	ids := make([]string, 0, len(list.Data))
	for _, m := range list.Data {
		if m.ID == c.model {
			return fmt.Sprintf("the server lists %q among %d model(s)", c.model, len(list.Data)), nil
		}
		if len(ids) < 10 {
			ids = append(ids, strconv.Quote(m.ID))
		}
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("the server lists no models at all, so not %q", c.model)
	}
	return "", fmt.Errorf("the server lists %d model(s) (%s) but not %q; check the model name (or upstream_model)", len(list.Data), strings.Join(ids, ", "), c.model)
}

func (c checker) request(stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":      c.model,
		"messages":   []map[string]string{{"role": "user", "content": checkPrompt}},
		"max_tokens": 8,
		"stream":     stream,
	})
	return b
}

func (c checker) completion(ctx context.Context) (string, error) {
	_, raw, err := c.do(ctx, http.MethodPost, "/chat/completions", c.request(false))
	if err != nil {
		return "", err
	}
	var out struct {
		Choices []struct {
			Message *struct {
				Content *string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("the completion is not JSON: %s", snippet(raw))
	}
	if len(out.Choices) == 0 || out.Choices[0].Message == nil || out.Choices[0].Message.Content == nil {
		return "", fmt.Errorf("the completion has no choices[0].message.content: %s", snippet(raw))
	}
	return fmt.Sprintf("answered %s (finish_reason %q)", snippet([]byte(*out.Choices[0].Message.Content)), out.Choices[0].FinishReason), nil
}

func (c checker) stream(ctx context.Context) (string, error) {
	resp, raw, err := c.do(ctx, http.MethodPost, "/chat/completions", c.request(true))
	if err != nil {
		return "", err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return "", fmt.Errorf("the streamed completion came as %q, not text/event-stream: %s", ct, snippet(raw))
	}
	chunks, done := 0, false
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), maxCheckBody)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			break
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return "", fmt.Errorf("stream chunk %d is not JSON: %s", chunks+1, snippet([]byte(data)))
		}
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		chunks++
	}
	switch {
	case chunks == 0:
		return "", errors.New("the stream carried no chunks")
	case !done:
		return "", fmt.Errorf("the stream ended after %d chunk(s) without \"data: [DONE]\"", chunks)
	}
	return fmt.Sprintf("%d chunk(s) ending in [DONE], text %s", chunks, snippet([]byte(text.String()))), nil
}
