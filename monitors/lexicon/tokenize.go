package lexicon

import (
	"unicode"
	"unicode/utf8"
)

// Token flags.
const (
	// FlagUpper: the token has at least two letters, all upper case ("IGNORE").
	FlagUpper uint8 = 1 << iota
	// FlagTitle: the first letter is upper case and the token is not FlagUpper.
	FlagTitle
	// FlagHan: the token is one Han character.
	FlagHan
	// FlagDigit: the token holds a digit.
	FlagDigit
	// FlagMasked: letters of the token were masked with symbols ("f*ck", "sh#t");
	// each mask symbol is '*' in the folded word.
	FlagMasked
	// FlagBreak: a sentence or line break (or the start of the text) comes before
	// the token.
	FlagBreak
	// FlagQuoted: a quotation mark comes directly before the token.
	FlagQuoted
)

// Token is one word of a text.
type Token struct {
	// ByteStart and ByteEnd delimit the word in the text, in bytes.
	ByteStart, ByteEnd int
	// Start and End delimit the word in Unicode code points, counted as
	// []rune(text) counts them (an invalid byte is one point).
	Start, End int
	// Flags is a set of the Flag* bits.
	Flags uint8
	// w0, w1 delimit the folded word in Tokens.buf.
	w0, w1 int32
}

// Tokens is a tokenized text. The zero value is ready; reuse one Tokens for many
// texts to avoid allocations.
type Tokens struct {
	// List holds the tokens in text order.
	List []Token
	buf  []byte
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.List) }

// Word is the case-folded word of token i. It is valid until the next Tokenize.
func (t *Tokens) Word(i int) []byte {
	tk := &t.List[i]
	return t.buf[tk.w0:tk.w1]
}

// Folded returns the case-folded words of every token concatenated, in one
// string; WordBounds locates token i's word in it. One allocation per call.
func (t *Tokens) Folded() string { return string(t.buf) }

// WordBounds returns where token i's word lies in Folded().
func (t *Tokens) WordBounds(i int) (start, end int) {
	tk := &t.List[i]
	return int(tk.w0), int(tk.w1)
}

// Has reports whether token i carries flag f.
func (t *Tokens) Has(i int, f uint8) bool { return t.List[i].Flags&f != 0 }

// Span returns the code-point range covered by tokens [from, to).
func (t *Tokens) Span(from, to int) (start, end int) {
	if from >= to || to > len(t.List) {
		return 0, 0
	}
	return t.List[from].Start, t.List[to-1].End
}

// maxMaskWord bounds the length of a word in which symbols are read as masked
// letters ("f&@k"); longer runs are split at the symbols (e-mail addresses).
const maxMaskWord = 10

// isMaskSymbol reports whether r may stand for a masked letter.
func isMaskSymbol(r rune) bool {
	switch r {
	case '*', '#', '@', '$', '&', '%', '!', '|':
		return true
	}
	return false
}

// isInvisible reports the zero-width characters that are skipped inside words.
func isInvisible(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad':
		return true
	}
	return false
}

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

func isBreak(r rune) bool {
	switch r {
	case '.', '!', '?', '\n', ';', '。', '！', '？', '；':
		return true
	}
	return false
}

func isQuote(r rune) bool {
	switch r {
	case '"', '\'', '\u2018', '\u2019', '\u201c', '\u201d', '«', '»', '「', '」', '『', '』', '`':
		return true
	}
	return false
}

// fold case-folds r and maps full-width ASCII to ASCII.
func fold(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E {
		r -= 0xFEE0
	}
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 32
		}
		return r
	}
	return unicode.ToLower(r)
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r|0x20 && r|0x20 <= 'z' || '0' <= r && r <= '9' || r == '_'
	}
	if r >= 0xFF10 && r <= 0xFF5A { // full-width digits and letters
		return unicode.IsLetter(r-0xFEE0) || unicode.IsDigit(r-0xFEE0)
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func isHan(r rune) bool { return r >= 0x2E80 && unicode.Is(unicode.Han, r) }

// Tokenize splits text into words, replacing what t held.
func Tokenize(text string, t *Tokens) {
	t.List = t.List[:0]
	t.buf = t.buf[:0]
	brk, quoted, space := true, false, true
	cp := 0
	i := 0
	for i < len(text) {
		if c := text[i]; c < utf8.RuneSelf && !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '_') {
			// ASCII space and punctuation.
			switch c {
			case '.', '!', '?', '\n', ';':
				brk = true
			}
			switch c {
			case '"', '\'', '`':
				quoted = space // an opening quote follows a space
				space = false
			case ' ', '\t', '\n', '\r', '\v', '\f', '(', '[', ':':
				space = true
			default:
				quoted, space = false, false
			}
			i++
			cp++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if isHan(r) {
			w0 := len(t.buf)
			t.buf = utf8.AppendRune(t.buf, r)
			fl := FlagHan
			if brk {
				fl |= FlagBreak
			}
			if quoted {
				fl |= FlagQuoted
			}
			t.List = append(t.List, Token{ByteStart: i, ByteEnd: i + size, Start: cp, End: cp + 1, Flags: fl, w0: int32(w0), w1: int32(len(t.buf))})
			brk, quoted, space = false, false, false
			i += size
			cp++
			continue
		}
		if !isWordRune(r) {
			if isBreak(r) {
				brk = true
			}
			switch {
			case isQuote(r):
				quoted, space = space || r == '“' || r == '「' || r == '『' || r == '«' || r == '‘', false
			case unicode.IsSpace(r):
				space = true
			default:
				quoted, space = false, false
			}
			i += size
			cp++
			continue
		}
		i, cp = t.word(text, i, cp, brk, quoted)
		brk, quoted, space = false, false, false
	}
}

// word reads the word starting at byte i (code point cp) and returns the
// position after it.
func (t *Tokens) word(text string, i, cp int, brk, quoted bool) (int, int) {
	w := wordState{start: i, startCP: cp, end: i, endCP: cp, w0: len(t.buf)}
	if brk {
		w.fl |= FlagBreak
	}
	if quoted {
		w.fl |= FlagQuoted
	}
	for i < len(text) {
		// ASCII fast path: letters and digits.
		if c := text[i]; c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z':
				w.letters++
				t.buf = append(t.buf, c)
				i++
				cp++
				w.end, w.endCP = i, cp
				continue
			case 'A' <= c && c <= 'Z':
				if w.letters == 0 && len(t.buf) == w.w0 {
					w.firstUp = true
				}
				w.upper++
				w.letters++
				t.buf = append(t.buf, c+32)
				i++
				cp++
				w.end, w.endCP = i, cp
				continue
			case '0' <= c && c <= '9' || c == '_':
				if c != '_' {
					w.fl |= FlagDigit
				}
				t.buf = append(t.buf, c)
				i++
				cp++
				w.end, w.endCP = i, cp
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isHan(r):
			return t.finish(&w)
		case isWordRune(r):
			if unicode.IsUpper(r) {
				if w.letters == 0 && len(t.buf) == w.w0 {
					w.firstUp = true
				}
				w.upper++
			}
			if unicode.IsLetter(r) {
				w.letters++
			} else if unicode.IsDigit(r) {
				w.fl |= FlagDigit
			}
			t.buf = utf8.AppendRune(t.buf, fold(r))
			i += size
			cp++
			w.end, w.endCP = i, cp
		case isInvisible(r):
			i += size
			cp++
		case isApostrophe(r) && w.letters > 0 && nextIsLetter(text[i+size:]):
			i += size
			cp++
		case isMaskSymbol(r) && w.letters > 0:
			j, n, stars := t.maskRun(text, i)
			followed := j < len(text) && nextIsLetter(text[j:])
			if followed && stars != n && (w.letters > 3 || lettersAhead(text[j:]) > 4) {
				// Only short words hide letters behind '@', '#', ... ("f&@k");
				// "b@example" is an address.
				followed = false
			}
			ok := followed && n <= 3 && (len(t.buf)-w.w0+n <= maxMaskWord || stars == n) ||
				!followed && stars == n && stars >= 2
			if !ok {
				return t.finish(&w)
			}
			for range n {
				t.buf = append(t.buf, '*')
			}
			w.fl |= FlagMasked
			i, cp = j, cp+n
			w.end, w.endCP = i, cp
		default:
			return t.finish(&w)
		}
	}
	return t.finish(&w)
}

// wordState is the word being read.
type wordState struct {
	start, startCP, end, endCP, w0 int
	fl                             uint8
	letters, upper                 int
	firstUp                        bool
}

// maskRun measures the run of mask symbols at i: its end, length and number of '*'.
func (t *Tokens) maskRun(text string, i int) (end, n, stars int) {
	for i < len(text) {
		c, sz := utf8.DecodeRuneInString(text[i:])
		if !isMaskSymbol(c) {
			break
		}
		if c == '*' {
			stars++
		}
		i += sz
		n++
	}
	return i, n, stars
}

func (t *Tokens) finish(w *wordState) (int, int) {
	fl := w.fl
	switch {
	case w.letters >= 2 && w.upper == w.letters:
		fl |= FlagUpper
	case w.firstUp:
		fl |= FlagTitle
	}
	t.List = append(t.List, Token{ByteStart: w.start, ByteEnd: w.end, Start: w.startCP, End: w.endCP,
		Flags: fl, w0: int32(w.w0), w1: int32(len(t.buf))})
	return w.end, w.endCP
}

// lettersAhead counts the word runes at the start of s (up to 5).
func lettersAhead(s string) int {
	n := 0
	for _, r := range s {
		if !isWordRune(r) || isHan(r) || n > 4 {
			break
		}
		n++
	}
	return n
}

func nextIsLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordRune(r) && !isHan(r)
}
