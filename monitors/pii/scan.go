package pii

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// PII kinds, as they appear in events.Span.Kind.
const (
	KindEmail = "email"
	KindPhone = "phone"
	KindCard  = "card"
)

// Match is one piece of PII found in a text.
type Match struct {
	// Kind is KindEmail, KindPhone or KindCard.
	Kind string
	// Start and End are the match's range [Start, End) in Unicode code points,
	// counted the way []rune(text) counts them (an invalid byte is one point).
	Start, End int
	// ByteStart and ByteEnd are the same range in bytes.
	ByteStart, ByteEnd int
}

// Scan appends to dst every e-mail address, phone number and Luhn-valid payment
// card number in text, in text order, and returns the extended slice. It does not
// allocate beyond growing dst. Matches never overlap; a number inside an e-mail
// address is part of the address.
func Scan(text string, dst []Match) []Match {
	base := len(dst)
	dst = scanEmails(text, dst)
	emails := len(dst)
	dst = scanNumbers(text, dst, base, emails)
	if len(dst)-base > 1 && emails > base && len(dst) > emails {
		slices.SortFunc(dst[base:], func(a, b Match) int { return a.ByteStart - b.ByteStart })
	}
	// Byte offsets to code points, in one forward pass.
	pos, cp := 0, 0
	for i := base; i < len(dst); i++ {
		m := &dst[i]
		cp += utf8.RuneCountInString(text[pos:m.ByteStart])
		m.Start = cp
		cp += utf8.RuneCountInString(text[m.ByteStart:m.ByteEnd])
		m.End = cp
		pos = m.ByteEnd
	}
	return dst
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// isWord reports whether c joins a number to an identifier: an ASCII letter,
// digit or '_'. Numbers need a boundary of anything else (CJK text is fine).
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

// isLocal reports whether c may appear in the local part of an address we report
// (a conservative subset of RFC 5322 atext).
func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// E-mail bounds (RFC 5321).
const (
	maxLocalLen  = 64
	maxDomainLen = 253
	maxLabelLen  = 63
)

// scanEmails finds addresses around each '@': a local part of isLocal bytes not
// starting or ending with '.', and a domain of at least two labels whose last
// label (the TLD) is two or more letters.
func scanEmails(s string, dst []Match) []Match {
	from, floor := 0, 0
	for from < len(s) {
		k := strings.IndexByte(s[from:], '@')
		if k < 0 {
			break
		}
		at := from + k
		from = at + 1
		start := at
		for start > floor && isLocal(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		if start == at || at-start > maxLocalLen || s[at-1] == '.' {
			continue
		}
		end := domainEnd(s, at+1)
		if end < 0 {
			continue
		}
		dst = append(dst, Match{Kind: KindEmail, ByteStart: start, ByteEnd: end})
		from, floor = end, end
	}
	return dst
}

// domainEnd returns the end of the longest valid domain starting at i, or -1.
func domainEnd(s string, i int) int {
	good, labels, from := -1, 0, i
	for i < len(s) && i-from < maxDomainLen {
		j := i
		alpha := true
		for i < len(s) && (isAlnum(s[i]) || s[i] == '-') {
			if !isAlpha(s[i]) {
				alpha = false
			}
			i++
		}
		n := i - j
		if n == 0 || n > maxLabelLen || s[j] == '-' || s[i-1] == '-' {
			break
		}
		labels++
		if labels >= 2 && alpha && n >= 2 {
			good = i
		}
		if i+1 < len(s) && s[i] == '.' && isAlnum(s[i+1]) {
			i++
			continue
		}
		break
	}
	return good
}

// Numeric token limits: nothing we report has more than 19 digits or 6 groups, so
// a token is cut (and re-scanned from its next group) beyond these.
const (
	maxGroups = 12
	maxDigits = 32
)

// group is one run of digits in a token, possibly in parentheses.
type group struct {
	start, end int  // bytes, including the parentheses
	d0, nd     int  // first digit index in token.digits, digit count
	sep        byte // separator before this group: ' ', '-', '.', or 0 (first, or after ')')
	paren      bool
}

// token is a run of digit groups joined by single separators, e.g.
// "+86 138-1234-5678" or "(555) 123-4567".
type token struct {
	plus   bool
	start  int
	groups [maxGroups]group
	n      int
	digits [maxDigits]byte
	nd     int
	long   bool // the first group alone exceeds maxDigits: no match possible
}

// scanNumbers appends phone and card matches, skipping the e-mail matches in
// dst[emailsFrom:emailsTo].
func scanNumbers(s string, dst []Match, emailsFrom, emailsTo int) []Match {
	var t token
	ei := emailsFrom
	i := 0
	for i < len(s) {
		c := s[i]
		if !isDigit(c) && c != '+' && c != '(' {
			i++
			continue
		}
		for ei < emailsTo && dst[ei].ByteEnd <= i {
			ei++
		}
		limit := len(s)
		if ei < emailsTo {
			if dst[ei].ByteStart <= i {
				i = dst[ei].ByteEnd
				continue
			}
			limit = dst[ei].ByteStart
		}
		if i > 0 && isWord(s[i-1]) {
			i++
			continue
		}
		if !parseToken(s, i, limit, &t) {
			i++
			continue
		}
		end := t.groups[t.n-1].end
		dst = matchToken(s, &t, dst)
		i = end
	}
	return dst
}

// parseToken reads the token starting at i (before limit) into t.
func parseToken(s string, i, limit int, t *token) bool {
	*t = token{start: i}
	p := i
	if s[p] == '+' {
		p++
		if p >= limit || !isDigit(s[p]) {
			return false
		}
		t.plus = true
	}
	var sep byte
	for t.n < maxGroups {
		g := group{start: p, sep: sep, d0: t.nd}
		q := p
		if s[q] == '(' {
			q++
			for q < limit && isDigit(s[q]) && q-p <= 4 {
				q++
			}
			if q == p+1 || q >= limit || s[q] != ')' {
				break
			}
			g.paren = true
			g.nd = q - p - 1
			q++
		} else {
			for q < limit && isDigit(s[q]) {
				q++
			}
			g.nd = q - p
		}
		if t.nd+g.nd > maxDigits {
			if t.n == 0 {
				t.long = true
				t.groups[0] = g
				t.groups[0].end = q
				t.n = 1
				return true
			}
			break
		}
		digitsFrom := p
		if g.paren {
			digitsFrom++
		}
		copy(t.digits[t.nd:], s[digitsFrom:digitsFrom+g.nd])
		t.nd += g.nd
		g.end = q
		t.groups[t.n] = g
		t.n++

		// Separator to the next group.
		if q >= limit {
			break
		}
		switch c := s[q]; {
		case (c == ' ' || c == '-' || c == '.') && q+1 < limit && (isDigit(s[q+1]) || s[q+1] == '('):
			sep, p = c, q+1
		case g.paren && isDigit(c):
			sep, p = 0, q
		default:
			return t.n > 0
		}
	}
	return t.n > 0
}

// matchToken appends the matches of a token: for each group that may start a
// match (the first, or one after a space), the longest run of groups that
// classifies and ends before a space or at the token's end (not followed by a
// letter).
func matchToken(s string, t *token, dst []Match) []Match {
	if t.long {
		return dst
	}
	if end := t.groups[t.n-1].end; end < len(s) && isWord(s[end]) {
		// "4111111111111111abc": the last groups are part of an identifier.
		t.n--
		for t.n > 0 && t.groups[t.n].sep != ' ' {
			t.n--
		}
		if t.n == 0 {
			return dst
		}
	}
	for a := 0; a < t.n; {
		if a > 0 && t.groups[a].sep != ' ' {
			a++
			continue
		}
		matched := false
		for b := t.n - 1; b >= a; b-- {
			if b < t.n-1 && t.groups[b+1].sep != ' ' {
				continue
			}
			kind := classify(t, a, b)
			if kind == "" {
				continue
			}
			start := t.groups[a].start
			if a == 0 {
				start = t.start
			}
			dst = append(dst, Match{Kind: kind, ByteStart: start, ByteEnd: t.groups[b].end})
			a, matched = b+1, true
			break
		}
		if !matched {
			a++
		}
	}
	return dst
}

// classify decides what groups a..b of t are: KindPhone, KindCard or "".
func classify(t *token, a, b int) string {
	first, last := &t.groups[a], &t.groups[b]
	d := t.digits[first.d0 : last.d0+last.nd]
	nd := len(d)
	plus := a == 0 && t.plus
	var paren, dot, space, dash bool
	for k := a; k <= b; k++ {
		g := &t.groups[k]
		paren = paren || g.paren
		if k > a {
			dot = dot || g.sep == '.'
			space = space || g.sep == ' '
			dash = dash || g.sep == '-'
		}
	}
	if plus {
		// +86 mobile: +86 1[3-9]x xxxx xxxx, spaces or dashes anywhere.
		if nd == 13 && d[0] == '8' && d[1] == '6' && d[2] == '1' && d[3] >= '3' && d[3] <= '9' && !paren && !dot {
			return KindPhone
		}
		// E.164: country code (no leading 0) and subscriber number, 8-15 digits.
		if nd >= 8 && nd <= 15 && d[0] != '0' {
			return KindPhone
		}
		return ""
	}
	if !paren && !dot && !(space && dash) && nd >= 13 && nd <= 19 && cardGroups(t, a, b) && luhn(d) {
		return KindCard
	}
	// Bare Chinese mobile 1[3-9]xxxxxxxxx, or grouped 3-4-4.
	if nd == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9' && !paren && !dot {
		if a == b || (b-a == 2 && first.nd == 3 && t.groups[a+1].nd == 4 && last.nd == 4 && !(space && dash)) {
			return KindPhone
		}
	}
	if usPhone(t, a, b, d) {
		return KindPhone
	}
	return ""
}

// cardGroups accepts a card number's grouping: one run of digits, or groups of at
// least four digits (4-4-4-4, 4-6-5, ...) with a last group of at least three.
func cardGroups(t *token, a, b int) bool {
	for k := a; k < b; k++ {
		if t.groups[k].nd < 4 {
			return false
		}
	}
	return a == b || t.groups[b].nd >= 3
}

// usPhone accepts NANP numbers written (555) 123-4567, (555)123-4567,
// 555-123-4567, 555.123.4567, optionally after a "1" group (1-555-123-4567,
// 1 (555) 123-4567). The area code may not start with 0 or 1.
func usPhone(t *token, a, b int, d []byte) bool {
	if b-a == 3 {
		if t.groups[a].nd != 1 || d[0] != '1' || t.groups[a].paren {
			return false
		}
		a++
		d = d[1:]
	}
	if b-a != 2 || len(d) != 10 || d[0] < '2' {
		return false
	}
	area, exch, line := &t.groups[a], &t.groups[a+1], &t.groups[b]
	if area.nd != 3 || exch.nd != 3 || line.nd != 4 || exch.paren || line.paren {
		return false
	}
	if area.paren {
		return (exch.sep == ' ' || exch.sep == 0) && (line.sep == '-' || line.sep == '.' || line.sep == ' ')
	}
	return exch.sep == line.sep && (exch.sep == '-' || exch.sep == '.')
}

// luhn reports whether the ASCII digits d pass the Luhn checksum.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// Luhn reports whether number, ignoring spaces and dashes, is all digits and
// passes the Luhn checksum.
func Luhn(number string) bool {
	var buf [maxDigits]byte
	n := 0
	for i := 0; i < len(number); i++ {
		c := number[i]
		switch {
		case c == ' ' || c == '-':
		case isDigit(c) && n < len(buf):
			buf[n] = c
			n++
		default:
			return false
		}
	}
	return n > 0 && luhn(buf[:n])
}
