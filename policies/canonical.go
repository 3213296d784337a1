package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxInputBytes bounds a recorded input document that ParseInput accepts (the
// largest inputs carry message text, for trials with content access).
const MaxInputBytes = 4 << 20

// InputHashPrefix starts every InputHash.
const InputHashPrefix = "sha256:"

// Fields of the input document, one bit each: the memo keys only on the fields a
// policy reads (projection.go), and the canonical encoder writes the fields of a
// mask.
const (
	fTrial uint32 = 1 << iota
	fStage
	fTime
	fReqModel
	fReqStream
	fReqMaxTokens
	fReqMessageCount
	fReqRoles
	fReqEstTokens
	fCallerTenant
	fCallerUser
	fCallerCohort
	fCallerAttributes
	fCallerOverQuota
	fSigPIITypes
	fSigTopics
	fSigInjection
	fSigLanguage
	fContent

	fRequest = fReqModel | fReqStream | fReqMaxTokens | fReqMessageCount | fReqRoles | fReqEstTokens
	fCaller  = fCallerTenant | fCallerUser | fCallerCohort | fCallerAttributes | fCallerOverQuota
	fSignals = fSigPIITypes | fSigTopics | fSigInjection | fSigLanguage
	fAll     = fTrial | fStage | fTime | fRequest | fCaller | fSignals | fContent
)

// fieldNames names each field bit by its path in the input document.
var fieldNames = []struct {
	bit  uint32
	name string
}{
	{fTrial, "trial"}, {fStage, "stage"}, {fTime, "time"},
	{fReqModel, "request.model"}, {fReqStream, "request.stream"}, {fReqMaxTokens, "request.max_tokens"},
	{fReqMessageCount, "request.message_count"}, {fReqRoles, "request.roles"},
	{fReqEstTokens, "request.estimated_prompt_tokens"},
	{fCallerTenant, "caller.tenant"}, {fCallerUser, "caller.user"}, {fCallerCohort, "caller.cohort"},
	{fCallerAttributes, "caller.attributes"}, {fCallerOverQuota, "caller.over_quota"},
	{fSigPIITypes, "signals.pii_types"}, {fSigTopics, "signals.topics"},
	{fSigInjection, "signals.injection_score"}, {fSigLanguage, "signals.language"},
	{fContent, "content"},
}

// CanonicalInput returns the canonical JSON encoding of in and its hash
// ("sha256:" + 64 hex digits). The encoding is what Decision.Input holds:
//
//   - object keys in byte order at every level, no insignificant white space;
//   - every field present (lists and maps empty, never null), except "content",
//     which is present only when in.Content is not empty;
//   - strings as UTF-8, escaping only '"', '\\' and control characters (short
//     forms \b \f \n \r \t, else \u00XX); each byte of invalid UTF-8 becomes
//     U+FFFD, as encoding/json does;
//   - numbers as encoding/json writes them; signals.injection_score is clamped
//     into 0..1 first (NaN becomes 0), as Decide does.
//
// ParseInput(raw) gives back an Input whose encoding is raw again, so a recorded
// input replays to the same document and the same hash.
func CanonicalInput(in Input) (raw []byte, hash string) {
	normalizeInput(&in)
	raw = appendInput(make([]byte, 0, canonicalSizeHint(&in)), &in, fAll, nil)
	sum := sha256.Sum256(raw)
	return raw, hashString(sum)
}

// hashString formats a digest as an InputHash.
func hashString(sum [sha256.Size]byte) string {
	var b [len(InputHashPrefix) + 2*sha256.Size]byte
	copy(b[:], InputHashPrefix)
	hex.Encode(b[len(InputHashPrefix):], sum[:])
	return string(b[:])
}

// normalizeInput clamps what would otherwise make two encodings of one value or
// an invalid JSON number: the injection score into 0..1, NaN to 0.
func normalizeInput(in *Input) {
	s := in.Signals.InjectionScore
	switch {
	case math.IsNaN(s) || s < 0:
		in.Signals.InjectionScore = 0
	case s > 1:
		in.Signals.InjectionScore = 1
	}
}

// canonicalSizeHint estimates the encoded size, so encoding allocates once.
func canonicalSizeHint(in *Input) int {
	n := 420 + len(in.Trial) + len(in.Stage) + len(in.Time) + len(in.Request.Model) +
		len(in.Caller.Tenant) + len(in.Caller.User) + len(in.Caller.Cohort)
	for _, r := range in.Request.Roles {
		n += len(r) + 3
	}
	for k, v := range in.Caller.Attributes {
		n += len(k) + len(v) + 6
	}
	for _, s := range in.Signals.Topics {
		n += len(s) + 3
	}
	n += 10 * len(in.Signals.PIITypes)
	for _, m := range in.Content {
		n += len(m.Role) + len(m.Text) + 24
	}
	return n
}

// appendInput writes the fields of mask in canonical form. attrKeys, when not
// nil, restricts caller.attributes to those keys (sorted), for memo keys.
func appendInput(b []byte, in *Input, mask uint32, attrKeys []string) []byte {
	o := objWriter{b: b}
	o.open()
	if mask&fCaller != 0 {
		o.key("caller")
		c := objWriter{b: o.b}
		c.open()
		if mask&fCallerAttributes != 0 {
			c.key("attributes")
			c.b = appendAttributes(c.b, in.Caller.Attributes, attrKeys)
		}
		if mask&fCallerCohort != 0 {
			c.key("cohort")
			c.b = appendString(c.b, in.Caller.Cohort)
		}
		if mask&fCallerOverQuota != 0 {
			c.key("over_quota")
			c.b = strconv.AppendBool(c.b, in.Caller.OverQuota)
		}
		if mask&fCallerTenant != 0 {
			c.key("tenant")
			c.b = appendString(c.b, in.Caller.Tenant)
		}
		if mask&fCallerUser != 0 {
			c.key("user")
			c.b = appendString(c.b, in.Caller.User)
		}
		o.b = c.close()
	}
	if mask&fContent != 0 && len(in.Content) > 0 {
		o.key("content")
		o.b = append(o.b, '[')
		for i, m := range in.Content {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = append(o.b, `{"role":`...)
			o.b = appendString(o.b, m.Role)
			o.b = append(o.b, `,"text":`...)
			o.b = appendString(o.b, m.Text)
			o.b = append(o.b, '}')
		}
		o.b = append(o.b, ']')
	}
	if mask&fRequest != 0 {
		o.key("request")
		r := objWriter{b: o.b}
		r.open()
		if mask&fReqEstTokens != 0 {
			r.key("estimated_prompt_tokens")
			r.b = strconv.AppendInt(r.b, int64(in.Request.EstimatedPromptTokens), 10)
		}
		if mask&fReqMaxTokens != 0 {
			r.key("max_tokens")
			r.b = strconv.AppendInt(r.b, int64(in.Request.MaxTokens), 10)
		}
		if mask&fReqMessageCount != 0 {
			r.key("message_count")
			r.b = strconv.AppendInt(r.b, int64(in.Request.MessageCount), 10)
		}
		if mask&fReqModel != 0 {
			r.key("model")
			r.b = appendString(r.b, in.Request.Model)
		}
		if mask&fReqRoles != 0 {
			r.key("roles")
			r.b = appendStrings(r.b, in.Request.Roles)
		}
		if mask&fReqStream != 0 {
			r.key("stream")
			r.b = strconv.AppendBool(r.b, in.Request.Stream)
		}
		o.b = r.close()
	}
	if mask&fSignals != 0 {
		o.key("signals")
		s := objWriter{b: o.b}
		s.open()
		if mask&fSigInjection != 0 {
			s.key("injection_score")
			s.b = appendFloat(s.b, in.Signals.InjectionScore)
		}
		if mask&fSigLanguage != 0 {
			s.key("language")
			s.b = appendString(s.b, in.Signals.Language)
		}
		if mask&fSigPIITypes != 0 {
			s.key("pii_types")
			s.b = appendStrings(s.b, in.Signals.PIITypes)
		}
		if mask&fSigTopics != 0 {
			s.key("topics")
			s.b = appendStrings(s.b, in.Signals.Topics)
		}
		o.b = s.close()
	}
	if mask&fStage != 0 {
		o.key("stage")
		o.b = appendString(o.b, in.Stage)
	}
	if mask&fTime != 0 {
		o.key("time")
		o.b = appendString(o.b, in.Time)
	}
	if mask&fTrial != 0 {
		o.key("trial")
		o.b = appendString(o.b, in.Trial)
	}
	return o.close()
}

// objWriter writes one JSON object, placing the commas.
type objWriter struct {
	b    []byte
	some bool
}

func (o *objWriter) open() { o.b = append(o.b, '{') }

func (o *objWriter) key(k string) {
	if o.some {
		o.b = append(o.b, ',')
	}
	o.some = true
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *objWriter) close() []byte { return append(o.b, '}') }

// appendAttributes writes the map with its keys in byte order; keys restricts it.
func appendAttributes(b []byte, m map[string]string, keys []string) []byte {
	if keys == nil {
		if len(m) == 0 {
			return append(b, '{', '}')
		}
		var stack [16]string
		keys = stack[:0]
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return writeAttributes(b, m, keys)
	}
	return writeAttributes(b, m, keys)
}

func writeAttributes(b []byte, m map[string]string, keys []string) []byte {
	b = append(b, '{')
	n := 0
	for _, k := range keys {
		v, ok := m[k]
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a canonical JSON string (see CanonicalInput).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validString returns s with each byte of invalid UTF-8 replaced by U+FFFD, the
// same string a JSON decode of appendString's output gives.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// ParseInput decodes a recorded input document (Decision.Input, or the input
// of a corpus case) strictly: one JSON object of the input contract, at most
// MaxInputBytes, no unknown fields, no trailing data. Errors wrap ErrInput.
func ParseInput(raw []byte) (Input, error) {
	var in Input
	if len(raw) > MaxInputBytes {
		return in, fmt.Errorf("%w: %d bytes, at most %d", ErrInput, len(raw), MaxInputBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Input{}, fmt.Errorf("%w: data after the input object", ErrInput)
	}
	return in, nil
}
