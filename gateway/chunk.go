package gateway

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/stagegate/stagegate/events"
)

// decodeCompletion fills c from a chat.completion or a chat.completion.chunk, as
// json.Unmarshal(b, c) would. The record reads every streamed chunk after the
// client is served, and encoding/json (a validating scan, then a reflective
// decode) was the largest cost of a stream in the gateway's CPU profile; so the
// common shape of an OpenAI-compatible answer is read by a small strict scanner,
// and anything it is not sure of (escaped or case-variant keys, duplicate keys,
// unexpected types, invalid JSON, deep nesting) goes to json.Unmarshal. The
// result never differs: FuzzDecodeCompletion compares the two.
//
// The backing array of c.Choices is reused, so a caller decoding chunk after
// chunk into one completion allocates it once.
func decodeCompletion(b []byte, c *completion) error {
	spare := c.Choices[:0]
	*c = completion{}
	p := scanner{b: b, spare: spare}
	if p.completion(c) {
		return nil
	}
	*c = completion{}
	return json.Unmarshal(b, c)
}

// maxFastDepth bounds the nesting the fast scanner follows; deeper input goes to
// encoding/json.
const maxFastDepth = 64

// scanner is a strict JSON reader over b; every method reports false when the
// input is not what it handles, never guessing.
type scanner struct {
	b     []byte
	i     int
	spare []choiceFields // reused for completion.Choices
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c, consuming it.
func (p *scanner) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// peek skips white space and returns the next byte (0 at the end).
func (p *scanner) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// object walks the members of an object (the '{' not yet consumed), calling
// member with each key; member consumes the value.
func (p *scanner) object(member func(key []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		key, ok := p.key()
		if !ok || !p.next(':') || !member(key) {
			return false
		}
		if p.next(',') {
			continue
		}
		return p.next('}')
	}
}

// key reads an object key; only plain ASCII keys without escapes are handled,
// so matching them exactly or case-insensitively is the same as encoding/json's.
func (p *scanner) key() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			k := p.b[start:p.i]
			p.i++
			return k, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// skipString skips a string whose opening quote is consumed, validating it as
// encoding/json's scanner does; it reports whether it held escapes or non-ASCII.
func (p *scanner) skipString() (plain, ok bool) {
	plain = true
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return plain, true
		case c < 0x20:
			return false, false
		case c >= 0x80:
			plain = false
		case c == '\\':
			plain = false
			if p.i >= len(p.b) {
				return false, false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.i+4 > len(p.b) {
					return false, false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !isHex(h) {
						return false, false
					}
				}
				p.i += 4
			default:
				return false, false
			}
		}
	}
	return false, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// str reads a string value, or null as "" (what Unmarshal leaves in a new string).
func (p *scanner) str() (string, bool) {
	if p.peek() == 'n' {
		return "", p.literal("null")
	}
	if !p.next('"') {
		return "", false
	}
	start := p.i - 1
	plain, ok := p.skipString()
	if !ok {
		return "", false
	}
	raw := p.b[start:p.i]
	if plain {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string // escapes and non-ASCII (invalid UTF-8 becomes U+FFFD): exactly as encoding/json
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func (p *scanner) literal(lit string) bool {
	p.ws()
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// number skips a JSON number and returns its text.
func (p *scanner) number() ([]byte, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
	default:
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

func (p *scanner) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// skip skips any valid JSON value.
func (p *scanner) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch p.peek() {
	case '"':
		p.i++
		_, ok := p.skipString()
		return ok
	case '{':
		return p.object(func([]byte) bool { return p.skip(depth + 1) })
	case '[':
		return p.array(func() bool { return p.skip(depth + 1) })
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		_, ok := p.number()
		return ok
	}
}

// array walks the elements of an array (the '[' not yet consumed).
func (p *scanner) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	if p.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.next(',') {
			continue
		}
		return p.next(']')
	}
}

// known returns the index of key among the struct's field names, or -1 for
// another key; ok is false for a key that matches a name only
// case-insensitively, which is left to encoding/json.
func known(key []byte, names ...string) (i int, ok bool) {
	for i, n := range names {
		if string(key) == n {
			return i, true
		}
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return -1, false
		}
	}
	return -1, true
}

// completion reads the whole input as a completion object.
func (p *scanner) completion(c *completion) bool {
	var seen [3]bool
	ok := p.object(func(key []byte) bool {
		i, ok := known(key, "id", "choices", "usage")
		switch {
		case !ok:
			return false
		case i < 0:
			return p.skip(1)
		case seen[i]:
			return false // a repeated key: encoding/json merges, leave it to it
		}
		seen[i] = true
		switch i {
		case 0:
			c.ID, ok = p.str()
			return ok
		case 1:
			if p.peek() != '[' {
				return false
			}
			c.Choices = p.spare[:0]
			if c.Choices == nil {
				c.Choices = make([]choiceFields, 0, 1) // [] decodes to an empty, non-nil slice
			}
			return p.array(func() bool {
				var ch *choiceFields
				c.Choices, ch = appendZero(c.Choices)
				return p.choice(ch)
			})
		default:
			if p.peek() == 'n' {
				return p.literal("null")
			}
			c.Usage = new(events.Usage)
			return p.usage(c.Usage)
		}
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// choiceFields is the element type of completion.Choices (an alias of the same
// unnamed struct type).
type choiceFields = struct {
	Message      *struct{ Content string } `json:"message"`
	Delta        *struct{ Content string } `json:"delta"`
	FinishReason string                    `json:"finish_reason"`
}

func (p *scanner) choice(ch *choiceFields) bool {
	if p.peek() != '{' {
		return false
	}
	var seen [3]bool
	return p.object(func(key []byte) bool {
		i, ok := known(key, "message", "delta", "finish_reason")
		switch {
		case !ok:
			return false
		case i < 0:
			return p.skip(2)
		case seen[i]:
			return false
		}
		seen[i] = true
		if i == 2 {
			ch.FinishReason, ok = p.str()
			return ok
		}
		if p.peek() == 'n' {
			return p.literal("null")
		}
		m := new(struct{ Content string })
		if i == 0 {
			ch.Message = m
		} else {
			ch.Delta = m
		}
		return p.message(m)
	})
}

func (p *scanner) message(m *struct{ Content string }) bool {
	if p.peek() != '{' {
		return false
	}
	seen := false
	return p.object(func(key []byte) bool {
		i, ok := known(key, "content")
		switch {
		case !ok:
			return false
		case i < 0:
			return p.skip(3)
		case seen:
			return false
		}
		seen = true
		m.Content, ok = p.str()
		return ok
	})
}

func (p *scanner) usage(u *events.Usage) bool {
	if p.peek() != '{' {
		return false
	}
	var seen [3]bool
	return p.object(func(key []byte) bool {
		i, ok := known(key, "prompt_tokens", "completion_tokens", "total_tokens")
		switch {
		case !ok:
			return false
		case i < 0:
			return p.skip(2)
		case seen[i]:
			return false
		}
		seen[i] = true
		if p.peek() == 'n' {
			return p.literal("null")
		}
		num, ok := p.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(string(num), 10, 0) // fractions, exponents, overflow: encoding/json's errors
		if err != nil {
			return false
		}
		switch i {
		case 0:
			u.PromptTokens = int(n)
		case 1:
			u.CompletionTokens = int(n)
		default:
			u.TotalTokens = int(n)
		}
		return true
	})
}

// appendZero appends a zero element and returns a pointer to it.
func appendZero[S ~[]E, E any](s S) (S, *E) {
	var zero E
	s = append(s, zero)
	return s, &s[len(s)-1]
}
