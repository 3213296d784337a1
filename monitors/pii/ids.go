package pii

// IBAN bounds.
const (
	minIBAN = 15
	maxIBAN = 34
)

// scanIBANs appends IBANs written compact ("GB82WEST12345698765432") or in
// groups of four ("GB82 WEST 1234 5698 7654 32"), in either case, that pass
// the country length and mod-97 checks. Matches overlapping earlier ones in
// dst[base:] are skipped.
func scanIBANs(s string, dst []Match, base int) []Match {
	var buf [maxIBAN]byte
	for i := 0; i+minIBAN <= len(s); i++ {
		if !isAlpha(s[i]) || !isAlpha(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) || i > 0 && isWord(s[i-1]) {
			continue
		}
		// Read alphanumerics, allowing single spaces between groups of four.
		n, j := 0, i
		group := 0
		for j < len(s) && n < maxIBAN {
			c := s[j]
			if isAlnum(c) {
				buf[n] = upper(c)
				n++
				group++
				j++
				continue
			}
			if c == ' ' && group == 4 && j+1 < len(s) && isAlnum(s[j+1]) {
				group = 0
				j++
				continue
			}
			break
		}
		// Try the longest valid prefix first: a trailing group may be another word.
		for k := n; k >= minIBAN; k-- {
			stop := ibanEnd(s, i, k)
			if stop < 0 || stop < len(s) && isWord(s[stop]) {
				continue
			}
			if ibanValid(buf[:k]) && !overlaps(dst[base:], i, stop) {
				dst = append(dst, Match{Kind: KindIBAN, ByteStart: i, ByteEnd: stop})
				i = stop
				break
			}
		}
	}
	return dst
}

// ibanEnd returns the byte after the k-th alphanumeric from i (skipping the
// group spaces), or -1.
func ibanEnd(s string, i, k int) int {
	for n := 0; i < len(s); i++ {
		if isAlnum(s[i]) {
			n++
			if n == k {
				return i + 1
			}
		}
	}
	return -1
}

// Passport-like numbers: up to two letters then 6-9 digits, or 8-9 mixed
// alphanumerics with at least 5 digits.
const (
	passportSearch = 40 // bytes after the keyword searched for the number
	minPassport    = 6
	maxPassport    = 10
)

// scanContextIDs appends numbers that only the words around them identify: a
// passport-like number within a few words after "passport" (or 护照), and a
// bare nine-digit social security number after "SSN" or "social security".
// The keywords are looked up among the tokens of w, so a text without them
// costs nothing more.
func scanContextIDs(w *wordText, dst []Match, base int) []Match {
	s := w.s
	for i := 0; i < w.n(); i++ {
		var after int
		kind := ""
		switch wd := w.words[i]; {
		case wd == "passport" || wd == "passports":
			kind, after = KindPassport, w.tok(i).ByteEnd
		case wd == "护" && i+1 < w.n() && w.words[i+1] == "照":
			kind, after = KindPassport, w.tok(i+1).ByteEnd
		case wd == "ssn" || wd == "ssns":
			kind, after = KindSSN, w.tok(i).ByteEnd
		case wd == "social" && i+1 < w.n() && w.words[i+1] == "security":
			kind, after = KindSSN, w.tok(i+1).ByteEnd
		default:
			continue
		}
		if kind == KindPassport {
			if st, en, ok := nextPassport(s, after); ok && !overlaps(dst[base:], st, en) {
				dst = append(dst, Match{Kind: KindPassport, ByteStart: st, ByteEnd: en})
			}
			continue
		}
		if st, en, ok := nextDigits(s, after, 9); ok && ssnValid([]byte(s[st:en])) && !overlaps(dst[base:], st, en) {
			dst = append(dst, Match{Kind: KindSSN, ByteStart: st, ByteEnd: en})
		}
	}
	return dst
}

// nextPassport finds the first alphanumeric word within passportSearch bytes
// after i that looks like a passport number.
func nextPassport(s string, i int) (start, end int, ok bool) {
	limit := min(len(s), i+passportSearch)
	for j := i; j < limit; j++ {
		if !isAlnum(s[j]) || j > 0 && isAlnum(s[j-1]) {
			continue
		}
		k := j
		letters, digits := 0, 0
		for k < len(s) && isAlnum(s[k]) {
			if isDigit(s[k]) {
				digits++
			} else {
				letters++
			}
			k++
		}
		n := k - j
		if n >= minPassport && n <= maxPassport && digits >= 5 && (letters <= 2 || digits >= n-3) && (k == len(s) || !isWord(s[k])) {
			return j, k, true
		}
	}
	return 0, 0, false
}

// nextDigits finds a run of exactly n digits within passportSearch bytes after i.
func nextDigits(s string, i, n int) (start, end int, ok bool) {
	limit := min(len(s), i+passportSearch)
	for j := i; j < limit; j++ {
		if !isDigit(s[j]) || j > 0 && isWord(s[j-1]) {
			continue
		}
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k-j == n && (k == len(s) || !isWord(s[k])) {
			return j, k, true
		}
		j = k
	}
	return 0, 0, false
}
