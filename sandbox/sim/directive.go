package sim

import (
	"fmt"
	"strings"
	"time"
)

// directivePrefix opens a directive; the next ']' closes it.
const directivePrefix = "[sim:"

// maxDirectiveBody bounds the text between "[sim:" and "]".
const maxDirectiveBody = 64

// directives are the behaviours scripted in the last user message.
type directives struct {
	pii    bool
	unsafe bool
	slow   time.Duration
	gap    time.Duration
	status int // scripted HTTP error status; 0 when absent
	tokens int // exact answer length in tokens; 0 when absent
	cut    int // chunks before dropping the stream; -1 when absent
}

// hasContent reports whether a directive decides the answer's text.
func (d *directives) hasContent() bool { return d.pii || d.unsafe || d.tokens > 0 }

// parseDirectives scans s for [sim:name] and [sim:name=value] directives. A later
// directive of the same name overrides an earlier one. Errors wrap ErrInvalidDirective.
func parseDirectives(s string) (directives, error) {
	d := directives{cut: -1}
	for {
		i := strings.Index(s, directivePrefix)
		if i < 0 {
			return d, nil
		}
		s = s[i+len(directivePrefix):]
		j := strings.IndexByte(s, ']')
		if j < 0 || j > maxDirectiveBody {
			return d, fmt.Errorf("%w: %q is not closed by ']' within %d characters", ErrInvalidDirective, directivePrefix+clip(s), maxDirectiveBody)
		}
		body := s[:j]
		s = s[j+1:]
		if err := d.apply(body); err != nil {
			return d, err
		}
	}
}

// apply sets the directive written as body ("pii", "slow=300ms", ...).
func (d *directives) apply(body string) error {
	name, value, hasValue := strings.Cut(body, "=")
	name = trimSpace(name)
	value = trimSpace(value)
	bad := func(why string) error {
		return fmt.Errorf("%w: [sim:%s]: %s", ErrInvalidDirective, body, why)
	}
	switch name {
	case "pii", "unsafe":
		if hasValue {
			return bad("takes no value")
		}
		if name == "pii" {
			d.pii = true
		} else {
			d.unsafe = true
		}
		return nil
	case "slow", "gap":
		if !hasValue || value == "" {
			return bad("needs a duration, e.g. [sim:" + name + "=300ms]")
		}
		v, err := time.ParseDuration(value)
		if err != nil || v < 0 || v > MaxDuration {
			return bad("duration must be between 0 and " + MaxDuration.String())
		}
		if name == "slow" {
			d.slow = v
		} else {
			d.gap = v
		}
		return nil
	case "error":
		v, ok := parseSmallInt(value)
		if !hasValue || !ok || v < 400 || v > 599 {
			return bad("needs an HTTP status from 400 to 599, e.g. [sim:error=503]")
		}
		d.status = v
		return nil
	case "tokens":
		v, ok := parseSmallInt(value)
		if !hasValue || !ok || v < 1 || v > MaxTokens {
			return bad(fmt.Sprintf("needs a token count from 1 to %d", MaxTokens))
		}
		d.tokens = v
		return nil
	case "cut":
		v, ok := parseSmallInt(value)
		if !hasValue || !ok || v > MaxTokens {
			return bad(fmt.Sprintf("needs a chunk count from 0 to %d", MaxTokens))
		}
		d.cut = v
		return nil
	}
	return bad("unknown directive; known: pii, unsafe, slow=D, gap=D, error=N, tokens=N, cut=N")
}

// parseSmallInt parses 1 to 9 decimal digits without sign.
func parseSmallInt(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 24
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
