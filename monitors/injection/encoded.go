package injection

import (
	"encoding/base64"
	"encoding/hex"
	"unicode"
	"unicode/utf8"
)

// Bounds of the encoded-payload scanner.
const (
	minBase64Len   = 24   // shorter runs are ordinary words and ids
	minHexLen      = 32   // 16 bytes
	maxDecodeBytes = 4096 // per blob; longer blobs are decoded only this far
	maxBlobs       = 16   // per text
	minInvisible   = 3    // zero-width characters before they count
	minTagChars    = 4    // Unicode tag characters (ASCII smuggling)
	printableShare = 0.85
)

// blob is an encoded or hidden payload found in a text.
type blob struct {
	kind       string // "base64", "hex", "tags", "invisible"
	start, end int    // code points
	decoded    string // text it decodes to (empty for bare invisible characters)
}

// findBlobs appends the payloads of s: base64 and hex runs that decode to
// readable text, Unicode tag characters (decoded to ASCII), and clusters of
// zero-width or bidirectional control characters.
func findBlobs(s string, dst []blob) []blob {
	var (
		runStart, runStartCP = -1, 0
		cp                   int
		tags                 []byte
		tagStart, tagEnd     = -1, 0
		invisible            int
		invStart, invEnd     = -1, 0
	)
	flush := func(end, endCP int) {
		if runStart < 0 || len(dst) >= maxBlobs {
			runStart = -1
			return
		}
		if b, ok := decodeRun(s[runStart:end]); ok {
			b.start, b.end = runStartCP, endCP
			dst = append(dst, b)
		}
		runStart = -1
	}
	for i, r := range s {
		if isBase64Byte(r) {
			if runStart < 0 {
				runStart, runStartCP = i, cp
			}
		} else {
			flush(i, cp)
		}
		switch {
		case r >= 0xE0020 && r <= 0xE007E:
			if tagStart < 0 {
				tagStart = cp
			}
			tagEnd = cp + 1
			if len(tags) < maxDecodeBytes {
				tags = append(tags, byte(r-0xE0000))
			}
		case isHiddenControl(r):
			if invStart < 0 {
				invStart = cp
			}
			invEnd = cp + 1
			invisible++
		}
		cp++
	}
	flush(len(s), cp)
	if len(tags) >= minTagChars && len(dst) < maxBlobs {
		dst = append(dst, blob{kind: "tags", start: tagStart, end: tagEnd, decoded: string(tags)})
	}
	if invisible >= minInvisible && len(dst) < maxBlobs {
		dst = append(dst, blob{kind: "invisible", start: invStart, end: invEnd})
	}
	return dst
}

// isHiddenControl reports zero-width and bidirectional control characters. The
// zero-width joiner is left out: emoji sequences use it.
func isHiddenControl(r rune) bool {
	switch {
	case r == '\u200b', r == '\u200c', r == '\u200e', r == '\u200f', r == '\u2060', r == '\u2061',
		r == '\u2062', r == '\u2063', r == '\u2064', r == '\ufeff':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

func isBase64Byte(r rune) bool {
	return r < utf8.RuneSelf && ('a' <= r|0x20 && r|0x20 <= 'z' || '0' <= r && r <= '9' ||
		r == '+' || r == '/' || r == '=' || r == '-' || r == '_')
}

// decodeRun decodes a run of base64 or hex characters when it is long, looks
// encoded (not a plain word), and decodes to readable text.
func decodeRun(run string) (blob, bool) {
	if len(run) < minBase64Len && len(run) < minHexLen {
		return blob{}, false
	}
	if len(run) > maxDecodeBytes*2 {
		run = run[:maxDecodeBytes*2]
	}
	if isHex(run) {
		if len(run) < minHexLen || len(run)%2 == 1 {
			return blob{}, false
		}
		out, err := hex.DecodeString(run)
		if err == nil && readable(out) {
			return blob{kind: "hex", decoded: string(out)}, true
		}
		return blob{}, false
	}
	if len(run) < minBase64Len || !mixedClasses(run) {
		return blob{}, false
	}
	trimmed := run
	for len(trimmed) > 0 && trimmed[len(trimmed)-1] == '=' {
		trimmed = trimmed[:len(trimmed)-1]
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		n := len(trimmed) - len(trimmed)%4
		if len(trimmed)%4 != 1 {
			n = len(trimmed)
		}
		out, err := enc.DecodeString(trimmed[:n])
		if err == nil && readable(out) {
			return blob{kind: "base64", decoded: string(out)}, true
		}
	}
	return blob{}, false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f') {
			return false
		}
	}
	return true
}

// mixedClasses: base64 of text mixes upper case, lower case and digits; a long
// plain word or number does not.
func mixedClasses(s string) bool {
	var up, lo, dig bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			up = true
		case 'a' <= c && c <= 'z':
			lo = true
		case '0' <= c && c <= '9':
			dig = true
		}
	}
	return up && lo && (dig || len(s) >= 40)
}

// readable reports whether b is valid UTF-8 made mostly of letters, digits,
// spaces and punctuation, with at least one space (words, not a binary key).
func readable(b []byte) bool {
	if len(b) < 8 || !utf8.Valid(b) {
		return false
	}
	good, total, spaces := 0, 0, 0
	for _, r := range string(b) {
		total++
		switch {
		case r == ' ' || r == '\n' || r == '\t':
			good++
			spaces++
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r):
			good++
		}
	}
	return spaces > 0 && float64(good) >= printableShare*float64(total)
}
