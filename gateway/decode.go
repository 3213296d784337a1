package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/stagegate/stagegate/events"
)

// Bounds on a chat request beyond the body size.
const (
	MaxMessages     = 2048
	MaxModelNameLen = 256
	MaxUserLen      = 256
)

// chatRequest is the part of an OpenAI chat completion request the gateway reads.
// Every other field is kept verbatim in raw and forwarded to the model.
type chatRequest struct {
	raw          map[string]json.RawMessage
	Model        string
	Messages     []events.Message
	Stream       bool
	MaxTokens    int    // max_tokens or max_completion_tokens, 0 when absent
	maxTokensKey string // which of the two the client used
	User         string
	Temperature  *float64
}

// readBodyWithin reads the body as readBody does, under a read deadline of
// timeout on the connection (cleared afterwards, so a streamed answer is not
// cut): a body that does not arrive in time is ErrBodyTimeout (408).
func readBodyWithin(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	// A socket deadline is wall-clock time by nature, not the injected clock.
	// Writers that cannot set one (tests' recorders) read without it.
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	body, err := readBody(r, limit)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline stays: net/http drains an unread body before it answers,
		// which must fail at once rather than wait for bytes that do not come;
		// the connection is closed after the answer.
		w.Header().Set("Connection", "close")
		return nil, Error(http.StatusRequestTimeout, fmt.Errorf("%w: the body did not arrive within %s", ErrBodyTimeout, timeout))
	}
	if deadline {
		_ = rc.SetReadDeadline(time.Time{}) // the answer may stream for minutes
	}
	return body, err
}

// readBody reads at most limit bytes; a longer body is ErrTooLarge.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, Error(http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, r.ContentLength, limit))
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, Error(http.StatusBadRequest, fmt.Errorf("%w: reading body: %w", ErrMalformed, err))
	}
	if n > limit {
		return nil, Error(http.StatusRequestEntityTooLarge, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, limit))
	}
	return buf.Bytes(), nil
}

// decodeChatRequest parses and validates a chat completion body.
func decodeChatRequest(body []byte) (*chatRequest, error) {
	bad := func(format string, a ...any) error {
		return Error(http.StatusBadRequest, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...))
	}
	req := &chatRequest{}
	if err := json.Unmarshal(body, &req.raw); err != nil {
		return nil, bad("body is not a JSON object: %v", err)
	}
	if req.raw == nil {
		return nil, bad("body is not a JSON object")
	}
	if v, ok := req.raw["model"]; !ok || jsonString(v, &req.Model) != nil || req.Model == "" {
		return nil, bad("'model' is required and must be a string")
	}
	if len(req.Model) > MaxModelNameLen {
		return nil, bad("'model' is longer than %d bytes", MaxModelNameLen)
	}
	msgs, ok := req.raw["messages"]
	if !ok {
		return nil, bad("'messages' is required")
	}
	var rawMsgs []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(msgs, &rawMsgs); err != nil {
		return nil, bad("'messages' must be an array of messages: %v", err)
	}
	if len(rawMsgs) == 0 {
		return nil, bad("'messages' must not be empty")
	}
	if len(rawMsgs) > MaxMessages {
		return nil, bad("'messages' has %d entries, the limit is %d", len(rawMsgs), MaxMessages)
	}
	req.Messages = make([]events.Message, len(rawMsgs))
	for i, m := range rawMsgs {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return nil, bad("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		text, err := contentText(m.Content)
		if err != nil {
			return nil, bad("messages[%d].content: %v", i, err)
		}
		req.Messages[i] = events.Message{Role: m.Role, Content: text}
	}
	if v, ok := req.raw["stream"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &req.Stream); err != nil {
			return nil, bad("'stream' must be a boolean")
		}
	}
	for _, key := range []string{"max_completion_tokens", "max_tokens"} {
		v, ok := req.raw[key]
		if !ok || isNull(v) {
			continue
		}
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n < 1 {
			return nil, bad("'%s' must be a positive integer", key)
		}
		req.MaxTokens, req.maxTokensKey = n, key
		break
	}
	if v, ok := req.raw["user"]; ok && !isNull(v) {
		if err := jsonString(v, &req.User); err != nil {
			return nil, bad("'user' must be a string")
		}
		if len(req.User) > MaxUserLen {
			return nil, bad("'user' is longer than %d bytes", MaxUserLen)
		}
	}
	if v, ok := req.raw["temperature"]; ok && !isNull(v) {
		var t float64
		if err := json.Unmarshal(v, &t); err != nil || t < 0 || t > 2 {
			return nil, bad("'temperature' must be a number between 0 and 2")
		}
		req.Temperature = &t
	}
	return req, nil
}

// contentText flattens a message content: a string, null, or an array of parts
// whose text parts are joined (images and other parts carry no text).
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := jsonString(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("must be a string or an array of content parts")
	}
	var b bytes.Buffer
	for _, p := range parts {
		if p.Type == "text" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// upstreamBody re-encodes the request for the model: the concrete model name, the
// policy's token cap, and the pseudonymous user instead of the client's id. Fields
// the gateway does not read pass through unchanged, byte for byte as the client
// sent them (they were validated when decoded); keys come out sorted. It is
// written directly rather than through json.Marshal of a map, which cost a map
// copy, reflection and a re-validation of every value on each request.
func (req *chatRequest) upstreamBody(model string, maxTokens int, user string) ([]byte, error) {
	capKey := ""
	if maxTokens > 0 && (req.MaxTokens == 0 || req.MaxTokens > maxTokens) {
		capKey = req.maxTokensKey
		if capKey == "" {
			capKey = "max_tokens"
		}
	}
	_, hasUser := req.raw["user"]
	keys := make([]string, 0, len(req.raw)+2)
	size := 2
	for k, v := range req.raw {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	for _, k := range []string{"model", capKey} {
		if _, ok := req.raw[k]; !ok && k != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]byte, 0, size+len(model)+len(user)+32)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		switch {
		case k == "model":
			out = appendJSONString(out, model)
		case k == capKey:
			out = strconv.AppendInt(out, int64(maxTokens), 10)
		case k == "user" && hasUser:
			out = appendJSONString(out, user)
		default:
			out = append(out, req.raw[k]...)
		}
	}
	return append(out, '}'), nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// jsonString decodes a JSON string value (or null, which leaves dst as is) as
// json.Unmarshal does. raw comes from a validated document, so a value between
// quotes with no escape, quote or control byte and valid UTF-8 is its own text:
// the common case skips encoding/json.
func jsonString(raw json.RawMessage, dst *string) error {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		inner := raw[1 : n-1]
		plain := true
		for _, c := range inner {
			if c < 0x20 || c == '"' || c == '\\' {
				plain = false
				break
			}
		}
		if plain && utf8.Valid(inner) {
			*dst = string(inner)
			return nil
		}
	}
	return json.Unmarshal(raw, dst)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with strings and ints
	}
	return b
}
