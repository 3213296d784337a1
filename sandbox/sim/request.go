package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// chatRequest is the part of an OpenAI chat-completion request the simulator
// reads; other fields are accepted and ignored.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	Stream              bool          `json:"stream"`
	StreamOptions       streamOptions `json:"stream_options"`
	MaxTokens           optInt        `json:"max_tokens"`
	MaxCompletionTokens optInt        `json:"max_completion_tokens"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string      `json:"role"`
	Content textContent `json:"content"`
}

// textContent is a message's content: a string, an array of content parts (their
// text parts joined by newlines), or null.
type textContent struct {
	text string
}

// UnmarshalJSON decodes the string form without a second pass when it holds no escapes.
func (c *textContent) UnmarshalJSON(b []byte) error {
	c.text = ""
	if len(b) == 0 {
		return errors.New("empty content")
	}
	switch b[0] {
	case 'n':
		return nil
	case '"':
		raw := b[1 : len(b)-1]
		if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			c.text = string(raw)
			return nil
		}
		return json.Unmarshal(b, &c.text)
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		var sb strings.Builder
		for _, p := range parts {
			if p.Type != "text" {
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(p.Text)
		}
		c.text = sb.String()
		return nil
	}
	return errors.New("content must be a string, an array of content parts or null")
}

// optInt is an optional JSON integer (absent or null leave it unset).
type optInt struct {
	v   int64
	set bool
}

// UnmarshalJSON accepts null or an integer.
func (o *optInt) UnmarshalJSON(b []byte) error {
	*o = optInt{}
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errors.New("max_tokens and max_completion_tokens must be integers")
	}
	*o = optInt{v: v, set: true}
	return nil
}

// reset clears r for reuse, keeping the messages' backing array.
func (r *chatRequest) reset() {
	msgs := r.Messages[:cap(r.Messages)]
	clear(msgs)
	*r = chatRequest{Messages: msgs[:0]}
}

// decode parses and validates body into r. Errors wrap ErrInvalidRequest and are
// phrased for the client.
func (r *chatRequest) decode(body []byte) error {
	r.reset()
	if err := json.Unmarshal(body, r); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("%w: body is not valid JSON: %s", ErrInvalidRequest, se.Error())
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%w: field %q has the wrong type", ErrInvalidRequest, te.Field)
		}
		return fmt.Errorf("%w: %s", ErrInvalidRequest, err.Error())
	}
	if len(r.Messages) == 0 {
		return fmt.Errorf("%w: messages: must be a non-empty array", ErrInvalidRequest)
	}
	for i := range r.Messages {
		if r.Messages[i].Role == "" {
			return fmt.Errorf("%w: messages[%d].role: missing", ErrInvalidRequest, i)
		}
	}
	if len(r.Model) > MaxModelIDBytes {
		return fmt.Errorf("%w: model: longer than %d bytes", ErrInvalidRequest, MaxModelIDBytes)
	}
	for _, f := range [...]struct {
		name string
		v    optInt
	}{{"max_tokens", r.MaxTokens}, {"max_completion_tokens", r.MaxCompletionTokens}} {
		if f.v.set && f.v.v < 1 {
			return fmt.Errorf("%w: %s: must be at least 1", ErrInvalidRequest, f.name)
		}
	}
	return nil
}

// maxTokens is the client's cap on completion tokens, 0 when none is set.
// max_completion_tokens wins over the deprecated max_tokens.
func (r *chatRequest) maxTokens() int64 {
	if r.MaxCompletionTokens.set {
		return r.MaxCompletionTokens.v
	}
	if r.MaxTokens.set {
		return r.MaxTokens.v
	}
	return 0
}

// lastUser is the text of the last message with role "user", "" when there is none.
func (r *chatRequest) lastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content.text
		}
	}
	return ""
}

// promptTokens estimates the prompt's tokens as the words in all messages.
func (r *chatRequest) promptTokens() int {
	n := 0
	for i := range r.Messages {
		n += countWords(r.Messages[i].Content.text)
	}
	return n
}

func countWords(s string) int {
	n := 0
	in := false
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}
