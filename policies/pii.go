package policies

// PII and script detection, called from the extractor's single pass over the
// bytes: no allocation, no regular expressions. The rules are heuristics for a cheap inline signal; the PII risk
// monitor does the thorough job on the stored interaction.

// piiFound records which PII types a prompt shows.
type piiFound struct{ card, email, phone bool }

func (p *piiFound) count() int { return b2i(p.card) + b2i(p.email) + b2i(p.phone) }

// appendTypes appends the names found in sorted order.
func (p *piiFound) appendTypes(dst []string) []string {
	if p.card {
		dst = append(dst, PIICard)
	}
	if p.email {
		dst = append(dst, PIIEmail)
	}
	if p.phone {
		dst = append(dst, PIIPhone)
	}
	return dst
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scriptCounts counts letters per script for the language guess.
type scriptCounts struct {
	latin    int // ASCII letters
	latinExt int // accented Latin letters (U+00C0-U+027F, U+1E00-U+1EFF)
	han      int // CJK ideographs
	kana     int // Japanese kana
	other    int // letters of other scripts: Greek, Cyrillic, Arabic, Hangul, ...
}

// language guesses from the scripts: "zh" when CJK ideographs (weighted 2, a
// Chinese word being about two characters against an English word's five
// letters) outweigh ASCII letters, "en" when ASCII letters dominate, "und" for
// other scripts (Japanese kana, Cyrillic, Hangul, ...), heavily accented Latin,
// and text with almost no letters.
func (c *scriptCounts) language() string {
	zh, en, other := 2*c.han, c.latin, c.other
	if c.kana > 0 && 4*c.kana >= c.han {
		zh, other = 0, other+2*c.han+c.kana
	}
	if 10*c.latinExt > c.latin {
		en, other = 0, other+c.latin+c.latinExt
	}
	switch {
	case zh > 0 && zh >= en && zh >= other:
		return LanguageChinese
	case en >= 2 && en > other:
		return LanguageEnglish
	}
	return LanguageUnknown
}

// Byte flags for the scan loop.
const (
	flagLetter  uint8 = 1 // ASCII letter (counted for the language guess)
	flagSpecial uint8 = 2 // may start PII ('@', digit, '+', '(') or is a UTF-8 lead byte
)

var byteFlags = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		switch {
		case isLetterByte(byte(b)):
			t[b] = flagLetter
		case b == '@' || b == '+' || b == '(' || '0' <= b && b <= '9' || b >= 0xC0:
			t[b] = flagSpecial
		}
	}
	return t
}()

// scanSpecial handles the byte at t[i], flagged special: an '@' may be inside an
// e-mail address, a digit, '+' or '(' may start a card or phone number, and a
// UTF-8 lead byte says which script the character belongs to.
func scanSpecial(t string, i int, st *scanState) {
	b := t[i]
	switch {
	case b == '@':
		if !st.pii.email && isEmailAt(t, i) {
			st.pii.email = true
		}
	case b < 0x80: // digit, '+' or '(': a number run starts here unless inside one or a word
		if i >= st.numEnd && (i == 0 || !isWordByte(t[i-1])) {
			st.numEnd = scanNumber(t, i, &st.pii)
		}
	case b < 0xE0: // two-byte sequence: U+0080..U+07FF
		if i+1 >= len(t) || !isContinuation(t[i+1]) {
			return // not UTF-8: counts as nothing
		}
		if b >= 0xC3 && b <= 0xC9 {
			st.script.latinExt++ // U+00C0..U+027F (a few symbols at U+00D7/F7 count too)
		} else if b >= 0xCD {
			st.script.other++ // Greek, Cyrillic, Armenian, Hebrew, Arabic, ...
		}
	case b < 0xF0: // three-byte sequence: U+0800..U+FFFF
		if i+2 < len(t) && isContinuation(t[i+1]) && isContinuation(t[i+2]) {
			r := rune(b&0x0F)<<12 | rune(t[i+1]&0x3F)<<6 | rune(t[i+2]&0x3F)
			switch {
			case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF, r >= 0xF900 && r <= 0xFAFF:
				st.script.han++
			case r >= 0x3040 && r <= 0x30FF:
				st.script.kana++
			case r >= 0x1E00 && r <= 0x1EFF:
				st.script.latinExt++ // Latin Extended Additional (Vietnamese)
			case r >= 0xAC00 && r <= 0xD7AF, r >= 0x0900 && r <= 0x0FFF:
				st.script.other++ // Hangul; Indic scripts, Thai, Lao, Tibetan
			}
		}
	}
}

func isContinuation(b byte) bool { return b&0xC0 == 0x80 }

// isEmailAt reports an e-mail address around the '@' at t[at]: a local part of
// [A-Za-z0-9._%+-], and a domain of at least two labels of [A-Za-z0-9-] whose
// last label is two or more letters.
func isEmailAt(t string, at int) bool {
	j := at - 1
	for j >= 0 && isLocalByte(t[j]) {
		j--
	}
	if at-1-j < 1 {
		return false
	}
	k, labels, lastLen, lastAlpha := at+1, 0, 0, true
	for {
		start := k
		alpha := true
		for k < len(t) && isDomainByte(t[k]) {
			alpha = alpha && isLetterByte(t[k])
			k++
		}
		if k == start {
			break
		}
		labels++
		lastLen, lastAlpha = k-start, alpha
		if k+1 < len(t) && t[k] == '.' && isWordByte(t[k+1]) {
			k++
			continue
		}
		break
	}
	return labels >= 2 && lastLen >= 2 && lastAlpha
}

func isDomainByte(b byte) bool { return isWordByte(b) && b != '_' || b == '-' }

func isLetterByte(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

func isLocalByte(b byte) bool {
	return isWordByte(b) || b == '.' || b == '%' || b == '+' || b == '-'
}

// Bounds of a number run: longer runs are neither cards nor phone numbers.
const (
	maxRunDigits = 19
	maxRunGroups = 8
)

// numberRun is a run of digit groups with separators, as in "+1 (555) 123-4567"
// or "4111 1111 1111 1111".
type numberRun struct {
	digits  [maxRunDigits]byte
	groups  [maxRunGroups]uint8
	nd, ng  int
	plus    bool // starts with '+'
	paren   bool // has a parenthesised group
	dot     bool // a '.' separates groups
	tooLong bool
}

// scanNumber reads the number run starting at t[i] (a digit, '+' or '(' not
// preceded by a word byte), records a card or phone number if the run is one,
// and returns the index after the run (always > i).
func scanNumber(t string, i int, pii *piiFound) int {
	var r numberRun
	n := len(t)
	j := i
	if t[j] == '+' {
		r.plus = true
		j++
	}
	end := i + 1
	parenOpen := false
	for {
		if j < n && t[j] == '(' && !r.paren {
			r.paren, parenOpen = true, true
			j++
		}
		start := j
		for j < n && '0' <= t[j] && t[j] <= '9' {
			if r.nd < maxRunDigits {
				r.digits[r.nd] = t[j]
				r.nd++
			} else {
				r.tooLong = true
			}
			j++
		}
		if j == start {
			break // no digits where a group should start: the run ended before
		}
		if r.ng < maxRunGroups {
			r.groups[r.ng] = uint8(min(j-start, 255))
			r.ng++
		} else {
			r.tooLong = true
		}
		end = j
		if parenOpen {
			if j >= n || t[j] != ')' {
				return max(end, i+1) // "(123" is no phone number
			}
			parenOpen = false
			j++
			end = j
			if j < n && '0' <= t[j] && t[j] <= '9' {
				continue // "(555)123-4567"
			}
		}
		if j+1 < n && (t[j] == ' ' || t[j] == '-' || t[j] == '.') &&
			('0' <= t[j+1] && t[j+1] <= '9' || t[j+1] == '(' && !r.paren) {
			r.dot = r.dot || t[j] == '.'
			j++
			continue
		}
		break
	}
	if r.nd == 0 {
		return i + 1
	}
	if end < n && isWordByte(t[end]) || r.tooLong {
		// Glued to a word ("A1234567890b"), or longer than any card: skip it whole.
		for end < n && (isWordByte(t[end]) || t[end] == '-' || t[end] == '.') {
			end++
		}
		return end
	}
	switch {
	case r.isCard():
		pii.card = true
	case r.isPhone():
		pii.phone = true
	}
	return end
}

// isCard: 13-19 digits passing the Luhn check, written in one block or in groups
// of 3-6 separated by spaces or dashes, and not all one digit.
func (r *numberRun) isCard() bool {
	if r.plus || r.paren || r.dot || r.nd < 13 {
		return false
	}
	if r.ng > 1 {
		for _, g := range r.groups[:r.ng] {
			if g < 3 || g > 6 {
				return false
			}
		}
	}
	same := true
	for _, d := range r.digits[1:r.nd] {
		same = same && d == r.digits[0]
	}
	return !same && luhn(r.digits[:r.nd])
}

// luhn reports whether the digits pass the Luhn checksum.
func luhn(digits []byte) bool {
	sum := 0
	double := false
	for k := len(digits) - 1; k >= 0; k-- {
		d := int(digits[k] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// isPhone: an international number ("+" and 8-15 digits), a North American
// number in groups 3-3-4 (optionally 1-3-3-4), a Chinese mobile number (11 digits
// 1[3-9]..., in one block or 3-4-4), or a national number with a trunk 0 in two
// or more groups (10-12 digits, "020 7946 0958", "010-12345678"). A bare block
// of 10 digits is not (it is more often an id or a timestamp).
func (r *numberRun) isPhone() bool {
	d, g := r.digits[:r.nd], r.groups[:r.ng]
	switch {
	case r.plus:
		return r.nd >= 8 && r.nd <= 15
	case r.ng == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4:
		return d[0] >= '2'
	case r.ng == 4 && g[0] == 1 && g[1] == 3 && g[2] == 3 && g[3] == 4:
		return d[0] == '1' && d[1] >= '2'
	case r.nd == 11 && d[0] == '1' && d[1] >= '3' && (r.ng == 1 || r.ng == 3 && g[0] == 3 && g[1] == 4):
		return !r.dot
	case r.nd >= 10 && r.nd <= 12 && r.ng >= 2 && d[0] == '0' && d[1] != '0':
		return true
	}
	return false
}
