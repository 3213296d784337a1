package pii

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/stagegate/stagegate/monitors/lexicon"
)

// wordScratch is pooled: the word-level scanners run on every text.
type wordScratch struct {
	toks  lexicon.Tokens
	words []string
}

var wordPool = sync.Pool{New: func() any { return new(wordScratch) }}

// wordText is a tokenized text with helpers for the name and address scanners.
type wordText struct {
	s     string
	t     *lexicon.Tokens
	words []string // case-folded words (valid during the scan)
}

// scanWords appends the word-level matches — numbers identified by a keyword
// (passport, SSN), street addresses and person names — skipping anything that
// overlaps earlier matches in dst[base:].
func scanWords(s string, dst []Match, base int) []Match {
	if !hasLetter(s) {
		return dst
	}
	sc := wordPool.Get().(*wordScratch)
	defer wordPool.Put(sc)
	lexicon.Tokenize(s, &sc.toks)
	sc.words = sc.words[:0]
	folded := sc.toks.Folded()
	for i := range sc.toks.List {
		a, b := sc.toks.WordBounds(i)
		sc.words = append(sc.words, folded[a:b])
	}
	w := &wordText{s: s, t: &sc.toks, words: sc.words}
	dst = scanContextIDs(w, dst, base)
	dst = scanAddresses(w, dst, base)
	dst = scanPersons(w, dst, base)
	return dst
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if isAlpha(s[i]) || s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func (w *wordText) n() int                  { return len(w.words) }
func (w *wordText) tok(i int) lexicon.Token { return w.t.List[i] }
func (w *wordText) raw(i int) string        { return w.s[w.t.List[i].ByteStart:w.t.List[i].ByteEnd] }

// gap is the raw text between token i-1 and token i (before token 0: the text
// start).
func (w *wordText) gap(i int) string {
	from := 0
	if i > 0 {
		from = w.t.List[i-1].ByteEnd
	}
	if i >= len(w.t.List) {
		return w.s[from:]
	}
	return w.s[from:w.t.List[i].ByteStart]
}

// newlineBefore reports a line break between token i-1 and token i.
func (w *wordText) newlineBefore(i int) bool { return strings.ContainsRune(w.gap(i), '\n') }

// blankLineBefore reports an empty line between token i-1 and token i.
func (w *wordText) blankLineBefore(i int) bool { return strings.Count(w.gap(i), "\n") >= 2 }

// joined reports that tokens i-1 and i are separated by spaces only
// (optionally a '.' after an initial or abbreviation, or a comma when comma is
// true).
func (w *wordText) joined(i int, comma bool) bool {
	g := w.gap(i)
	if g == "" {
		return false
	}
	for _, r := range g {
		switch r {
		case ' ', '\t', '.':
		case ',':
			if !comma {
				return false
			}
		default:
			return false
		}
	}
	if strings.Contains(g, ".") {
		// Only after an initial or an abbreviation ("M. Szász", "Apt. 5").
		prev := w.words[i-1]
		return strings.Count(g, ".") == 1 && (len([]rune(prev)) <= 3 || abbreviations[prev])
	}
	return true
}

// abbreviations end with a '.' inside names and addresses.
var abbreviations = words(`apt ste st rd ave blvd dr mr mrs ms prof jr sr bldg fl no`)

func (w *wordText) isNum(i int) bool {
	wd := w.words[i]
	if len(wd) == 0 || len(wd) > 6 {
		return false
	}
	for k := 0; k < len(wd); k++ {
		if !isDigit(wd[k]) {
			return false
		}
	}
	return true
}

// letters reports a word of letters only.
func (w *wordText) letters(i int) bool {
	for _, r := range w.words[i] {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return w.words[i] != ""
}

func (w *wordText) title(i int) bool { return w.t.Has(i, lexicon.FlagTitle) }
func (w *wordText) upper(i int) bool { return w.t.Has(i, lexicon.FlagUpper) }

// sentenceStart reports a token that starts the text, a line or a sentence.
func (w *wordText) sentenceStart(i int) bool { return w.t.Has(i, lexicon.FlagBreak) }

// span is the byte range of tokens [a, b].
func (w *wordText) span(a, b int) (int, int) { return w.t.List[a].ByteStart, w.t.List[b].ByteEnd }
