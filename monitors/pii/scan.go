package pii

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// PII kinds, as they appear in events.Span.Kind.
const (
	KindEmail    = "email"
	KindPhone    = "phone"
	KindCard     = "card"
	KindIBAN     = "iban"
	KindSSN      = "ssn"
	KindIP       = "ip"
	KindCNID     = "cn_id"
	KindPassport = "passport"
	KindPerson   = "person"
	KindAddress  = "address"
)

// Match is one piece of PII found in a text.
type Match struct {
	// Kind is one of the Kind* constants.
	Kind string
	// Start and End are the match's range [Start, End) in Unicode code points,
	// counted the way []rune(text) counts them (an invalid byte is one point).
	Start, End int
	// ByteStart and ByteEnd are the same range in bytes.
	ByteStart, ByteEnd int
}

// Scan appends to dst every piece of PII in text, in text order, and returns
// the extended slice: e-mail addresses; phone numbers (+86 and bare Chinese
// mobiles, E.164, US and national formats — the weaker formats only next to a
// word such as "phone" or "call"); Luhn-valid payment card numbers; IBANs
// (mod-97); Chinese resident identity numbers (MOD 11-2, region and date); US
// social security numbers in issued ranges; IPv4 addresses; passport-like
// numbers after the word passport; person names and street addresses.
// Matches never overlap; a number inside an e-mail address is part of the
// address.
func Scan(text string, dst []Match) []Match {
	base := len(dst)
	dst = scanEmails(text, dst)
	dst = scanIBANs(text, dst, base)
	if len(dst)-base > 1 {
		slices.SortFunc(dst[base:], func(a, b Match) int { return a.ByteStart - b.ByteStart })
	}
	dst = scanNumbers(text, dst, base, len(dst))
	dst = scanWords(text, dst, base)
	if len(dst)-base > 1 {
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

// overlaps reports whether [start, end) overlaps a match in ms.
func overlaps(ms []Match, start, end int) bool {
	for i := range ms {
		if ms[i].ByteStart < end && start < ms[i].ByteEnd {
			return true
		}
	}
	return false
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

// scanNumbers appends the numeric matches (phones, cards, SSNs, IPs, resident
// ids), skipping the earlier matches in dst[emailsFrom:emailsTo] (e-mail
// addresses and IBANs, in text order).
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
	extEnd := -1
	if end := t.groups[t.n-1].end; end < len(s) && isWord(s[end]) {
		switch {
		case (s[end] == 'X' || s[end] == 'x') && t.n == 1 && t.nd == 17 && !t.plus &&
			(end+1 == len(s) || !isWord(s[end+1])):
			// A Chinese resident identity number ending in the check character X.
			var b [18]byte
			copy(b[:], t.digits[:17])
			b[17] = 'X'
			if cnidValid(b[:]) {
				return append(dst, Match{Kind: KindCNID, ByteStart: t.start, ByteEnd: end + 1})
			}
			return dst
		case s[end] == 'x' || s[end] == 'X':
			// A phone extension: "463-612-6138x036".
			j := end + 1
			for j < len(s) && isDigit(s[j]) && j-end <= 5 {
				j++
			}
			if j > end+1 && (j == len(s) || !isWord(s[j])) {
				extEnd = j
				break
			}
			fallthrough
		default:
			// "4111111111111111abc": the last groups are part of an identifier.
			t.n--
			for t.n > 0 && t.groups[t.n].sep != ' ' {
				t.n--
			}
			if t.n == 0 {
				return dst
			}
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
			start := t.groups[a].start
			if a == 0 {
				start = t.start
			}
			kind := classify(s, t, a, b, start)
			if kind == "" {
				continue
			}
			end := t.groups[b].end
			if b == t.n-1 && extEnd > 0 && kind == KindPhone {
				end = extEnd
			}
			dst = append(dst, Match{Kind: kind, ByteStart: start, ByteEnd: end})
			a, matched = b+1, true
			break
		}
		if !matched {
			a++
		}
	}
	return dst
}

// classify decides what groups a..b of t (starting at byte start of s) are:
// a Kind* constant or "".
func classify(s string, t *token, a, b, start int) string {
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
	end := last.end
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
	if b-a == 3 && dot && !space && !dash && !paren && ipGroups(t, a, b) {
		return KindIP
	}
	if b-a == 2 && !paren && !dot && !(space && dash) && first.nd == 3 && t.groups[a+1].nd == 2 && last.nd == 4 {
		if ssnValid(d) {
			return KindSSN
		}
		return ""
	}
	if nd == 18 && a == b && cnidValid(d) {
		return KindCNID
	}
	if !paren && !dot && !(space && dash) && nd >= 12 && nd <= 19 && cardGroups(t, a, b) && luhn(d) {
		if nd >= 13 || (d[0] == '5' || d[0] == '6') && hasContext(s, start, end, cardWords) {
			return KindCard
		}
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
	if ok, strong := groupedPhone(t, a, b, d); ok && (strong || hasContext(s, start, end, phoneWords)) {
		return KindPhone
	}
	return ""
}

// ipGroups accepts four dot-separated groups of 1-3 digits, each at most 255
// and without a leading zero.
func ipGroups(t *token, a, b int) bool {
	for k := a; k <= b; k++ {
		g := &t.groups[k]
		if g.nd < 1 || g.nd > 3 || g.paren {
			return false
		}
		dg := t.digits[g.d0 : g.d0+g.nd]
		if g.nd > 1 && dg[0] == '0' || atoi(dg) > 255 {
			return false
		}
	}
	return true
}

// groupedPhone accepts national and international numbers written in groups:
// 2-6 groups of 2-5 digits (the first group may be a parenthesised area code,
// "(0)" a trunk prefix), 7-13 digits in all, or a bare run of 10-11 digits.
// strong means the format alone is convincing: a trunk prefix 0 with at least
// 9 digits, a parenthesised area code, or 3+ groups with at least 9 digits that
// are not thousands groups. Dates (2015-12-22, 22.12.2015) are refused.
func groupedPhone(t *token, a, b int, d []byte) (ok, strong bool) {
	nd := len(d)
	if a == b {
		g := &t.groups[a]
		return !g.paren && (nd == 10 || nd == 11), false
	}
	if nd < 7 || nd > 13 || b-a > 5 || cardShaped(t) {
		return false, false
	}
	paren, thousands := false, true
	var sep byte
	// "0341 8387176", "(72) 754-186": an area code, then the subscriber number
	// in one group of up to 8 digits.
	areaThenNumber := b-a == 1 && (d[0] == '0' || t.groups[a].paren) && t.groups[a].nd <= 5
	for k := a; k <= b; k++ {
		g := &t.groups[k]
		if g.nd < 2 && !(g.paren && g.nd == 1) || g.nd > 5 && !(areaThenNumber && k == b && g.nd <= 8) {
			return false, false
		}
		if g.paren {
			paren = true
		}
		if k > a && (g.nd != 3 || g.sep == '-') {
			thousands = false
		}
		if k > a && g.sep != 0 && !t.groups[k-1].paren {
			if sep != 0 && g.sep != sep {
				return false, false // "555-123.4567"
			}
			sep = g.sep
		}
	}
	// The NANP shape 3-3-4 belongs to usPhone, which checks the area code;
	// with a trunk prefix 0 it is a national number ("083 564 9312").
	if b-a == 2 && !paren && d[0] != '0' && t.groups[a].nd == 3 && t.groups[a+1].nd == 3 && t.groups[b].nd == 4 {
		return false, false
	}
	if isDate(t, a, b) {
		return false, false
	}
	trunk := d[0] == '0' && nd >= 9
	strong = trunk || paren || (b-a >= 2 && nd >= 9 && !thousands)
	return true, strong
}

// cardShaped reports a token written like a card number (groups of four
// digits, 13 or more digits): when its checksum failed it is not a phone either.
func cardShaped(t *token) bool {
	if t.n < 3 || t.nd < 12 {
		return false
	}
	for k := 0; k < t.n-1; k++ {
		if t.groups[k].nd != 4 || t.groups[k].paren {
			return false
		}
	}
	return t.groups[t.n-1].nd >= 3 && t.groups[t.n-1].nd <= 4
}

// isDate reports groups that read as a date: yyyy-mm-dd, dd-mm-yyyy or mm-dd-yyyy.
func isDate(t *token, a, b int) bool {
	if b-a != 2 {
		return false
	}
	x, y, z := &t.groups[a], &t.groups[a+1], &t.groups[b]
	val := func(g *group) int { return atoi(t.digits[g.d0 : g.d0+g.nd]) }
	switch {
	case x.nd == 4 && y.nd <= 2 && z.nd <= 2:
		return val(y) >= 1 && val(y) <= 12 && val(z) >= 1 && val(z) <= 31
	case x.nd <= 2 && y.nd <= 2 && (z.nd == 4 || z.nd == 2):
		return val(x) >= 1 && val(x) <= 31 && val(y) >= 1 && val(y) <= 31 && (val(x) <= 12 || val(y) <= 12)
	}
	return false
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
