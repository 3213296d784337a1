package lexicon

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Entry is one phrase of a lexicon.
type Entry struct {
	// Pattern is the phrase (see the package doc for the syntax).
	Pattern string
	// Tag groups entries for the detector's scoring (e.g. "override", "reveal").
	Tag string
	// Weight is the entry's evidence strength in [0,1].
	Weight float64
}

// Hit is one match of an entry: tokens [From, To) of the tokenized text.
type Hit struct {
	Entry    int
	From, To int
}

// Bounds of the pattern language.
const (
	maxGap       = 9
	minPrefixLen = 3
	maxElems     = 16
	// maxSteps bounds the backtracking of one match attempt.
	maxSteps = 4096
	// maxScoredHits bounds the hits TagScores weighs (the first ones).
	maxScoredHits = 512
)

// alt is one alternative of an element: a token sequence, the last token
// possibly a prefix.
type alt struct {
	toks   [][]byte
	prefix bool
}

type elem struct {
	gap  int
	alts []alt
	// single holds the alternatives that are one exact word, for an O(1)
	// test; rest the others (several words, or a prefix).
	single map[string]struct{}
	rest   []alt
}

type pattern struct{ elems []elem }

// Lexicon is a compiled set of entries. It is immutable and safe for
// concurrent use.
type Lexicon struct {
	entries    []Entry
	entryTag   []int
	tags       []string
	pats       []pattern
	first      map[string][]int32
	prefix     map[string][]int32
	prefixLens []int
}

// Compile parses every entry and reports every malformed one at once.
func Compile(entries []Entry) (*Lexicon, error) {
	l := &Lexicon{
		entries: append([]Entry(nil), entries...),
		first:   map[string][]int32{},
		prefix:  map[string][]int32{},
	}
	var errs []string
	var scratch Tokens
	for i, e := range entries {
		p, err := parse(e.Pattern, &scratch)
		if err == nil && (e.Weight < 0 || e.Weight > 1) {
			err = fmt.Errorf("weight %v not in [0,1]", e.Weight)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("entry %d %q: %v", i, e.Pattern, err))
			continue
		}
		l.pats = append(l.pats, p)
		idx := int32(len(l.pats) - 1)
		l.entryTag = append(l.entryTag, l.tagIndex(e.Tag))
		for _, a := range p.elems[0].alts {
			key := string(a.toks[0])
			if a.prefix && len(a.toks) == 1 {
				l.prefix[key] = append(l.prefix[key], idx)
				if !containsInt(l.prefixLens, len(key)) {
					l.prefixLens = append(l.prefixLens, len(key))
				}
				continue
			}
			l.first[key] = append(l.first[key], idx)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrPattern, strings.Join(errs, "\n"))
	}
	return l, nil
}

// MustCompile is Compile for package-level lexicons written in code; it panics
// on a malformed entry, which a unit test catches.
func MustCompile(entries []Entry) *Lexicon {
	l, err := Compile(entries)
	if err != nil {
		panic(err)
	}
	return l
}

// Entry returns entry i as given to Compile.
func (l *Lexicon) Entry(i int) Entry { return l.entries[i] }

// Tags lists the distinct tags in order of first use; a tag's index is its
// position here.
func (l *Lexicon) Tags() []string { return l.tags }

// Tag returns the index of tag name, or -1.
func (l *Lexicon) Tag(name string) int {
	for i, t := range l.tags {
		if t == name {
			return i
		}
	}
	return -1
}

// EntryTag returns the tag index of entry i.
func (l *Lexicon) EntryTag(i int) int { return l.entryTag[i] }

func (l *Lexicon) tagIndex(name string) int {
	if i := l.Tag(name); i >= 0 {
		return i
	}
	l.tags = append(l.tags, name)
	return len(l.tags) - 1
}

// Tally sets max[k] to the highest weight among the hits of tag k and best[k] to
// that hit's index in hits (-1 when none). Both must have len(Tags()) elements.
func (l *Lexicon) Tally(hits []Hit, max []float64, best []int) {
	for k := range max {
		max[k], best[k] = 0, -1
	}
	for i, h := range hits {
		k := l.entryTag[h.Entry]
		if w := l.entries[h.Entry].Weight; best[k] < 0 || w > max[k] {
			max[k], best[k] = w, i
		}
	}
}

// Len is the number of entries.
func (l *Lexicon) Len() int { return len(l.entries) }

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// fields splits a pattern into elements at spaces outside parentheses.
func fields(s string) ([]string, error) {
	var out []string
	depth, start := 0, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(':
			if depth > 0 {
				return nil, fmt.Errorf("nested parentheses")
			}
			depth++
			if start < 0 {
				start = i
			}
		case c == ')':
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced ')'")
			}
			depth--
		case (c == ' ' || c == '\t' || c == '\n') && depth == 0:
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '('")
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out, nil
}

// parse compiles one pattern.
func parse(s string, scratch *Tokens) (pattern, error) {
	var p pattern
	fs, err := fields(s)
	if err != nil {
		return p, err
	}
	gap := 0
	for _, f := range fs {
		if f[0] == '~' {
			n, err := strconv.Atoi(f[1:])
			if err != nil || n < 1 || n > maxGap {
				return p, fmt.Errorf("gap %q: want ~1..~%d", f, maxGap)
			}
			if len(p.elems) == 0 {
				return p, fmt.Errorf("pattern starts with a gap")
			}
			gap += n
			continue
		}
		e := elem{gap: min(gap, maxGap)}
		gap = 0
		group := strings.HasPrefix(f, "(")
		if group {
			if !strings.HasSuffix(f, ")") {
				return p, fmt.Errorf("element %q: text after ')'", f)
			}
			f = f[1 : len(f)-1]
		}
		for _, a := range strings.Split(f, "|") {
			var al alt
			a = strings.TrimSpace(a)
			if strings.HasSuffix(a, "*") {
				al.prefix = true
				a = a[:len(a)-1]
			}
			Tokenize(a, scratch)
			if scratch.Len() == 0 {
				return p, fmt.Errorf("alternative %q has no word", a)
			}
			if !group && scratch.Len() > 1 && !allHan(scratch) {
				return p, fmt.Errorf("alternative %q has several words: write (a b|c)", a)
			}
			for i := range scratch.List {
				al.toks = append(al.toks, append([]byte(nil), scratch.Word(i)...))
			}
			if al.prefix && len(al.toks[len(al.toks)-1]) < minPrefixLen {
				return p, fmt.Errorf("prefix %q shorter than %d bytes", a, minPrefixLen)
			}
			e.alts = append(e.alts, al)
			if len(al.toks) == 1 && !al.prefix {
				if e.single == nil {
					e.single = map[string]struct{}{}
				}
				e.single[string(al.toks[0])] = struct{}{}
			} else {
				e.rest = append(e.rest, al)
			}
		}
		p.elems = append(p.elems, e)
	}
	switch {
	case len(p.elems) == 0:
		return p, fmt.Errorf("empty pattern")
	case len(p.elems) > maxElems:
		return p, fmt.Errorf("more than %d elements", maxElems)
	case gap > 0:
		return p, fmt.Errorf("pattern ends with a gap")
	}
	return p, nil
}

// allHan reports a tokenized alternative made only of Han characters (one
// Chinese word), or of a word split by the tokenizer at an apostrophe-free
// boundary such as "e-mail".
func allHan(t *Tokens) bool {
	for i := range t.List {
		if t.List[i].Flags&FlagHan == 0 {
			return false
		}
	}
	return true
}

// Match appends to dst every hit of the lexicon in t, in token order, and
// returns the extended slice. An entry may hit at several places; at one start
// token it reports its shortest match.
func (l *Lexicon) Match(t *Tokens, dst []Hit) []Hit {
	for i := range t.List {
		w := t.Word(i)
		if ps, ok := l.first[string(w)]; ok {
			dst = l.try(t, i, ps, dst)
		}
		for _, n := range l.prefixLens {
			if len(w) >= n {
				if ps, ok := l.prefix[string(w[:n])]; ok {
					dst = l.try(t, i, ps, dst)
				}
			}
		}
	}
	return dst
}

func (l *Lexicon) try(t *Tokens, i int, ps []int32, dst []Hit) []Hit {
	for _, pi := range ps {
		steps := 0
		if end, ok := matchFrom(&l.pats[pi], 0, t, i, &steps); ok {
			dst = append(dst, Hit{Entry: int(pi), From: i, To: end})
		}
	}
	return dst
}

// matchFrom matches elements k.. of p with element k starting within its gap
// of token pos (element 0 exactly at pos).
func matchFrom(p *pattern, k int, t *Tokens, pos int, steps *int) (int, bool) {
	if k == len(p.elems) {
		return pos, true
	}
	e := &p.elems[k]
	gap := e.gap
	if k == 0 {
		gap = 0
	}
	for s := 0; s <= gap && pos+s < len(t.List); s++ {
		*steps++
		if *steps > maxSteps {
			return 0, false
		}
		if e.single != nil {
			if _, ok := e.single[string(t.Word(pos+s))]; ok {
				if end, ok := matchFrom(p, k+1, t, pos+s+1, steps); ok {
					return end, true
				}
			}
		}
		for ai := range e.rest {
			n := matchAlt(&e.rest[ai], t, pos+s)
			if n == 0 {
				continue
			}
			if end, ok := matchFrom(p, k+1, t, pos+s+n, steps); ok {
				return end, true
			}
		}
	}
	return 0, false
}

// matchAlt returns how many tokens a matches at pos, or 0.
func matchAlt(a *alt, t *Tokens, pos int) int {
	if pos+len(a.toks) > len(t.List) {
		return 0
	}
	last := len(a.toks) - 1
	for j, want := range a.toks {
		w := t.Word(pos + j)
		if j == last && a.prefix {
			if !bytes.HasPrefix(w, want) {
				return 0
			}
			continue
		}
		if !bytes.Equal(w, want) {
			return 0
		}
	}
	return len(a.toks)
}

// TagScores sets score[k] to the noisy-OR of the weights of the (at most
// perTag) strongest distinct hits of tag k, and best[k] to the index in hits
// of the strongest hit (-1 when none). Both must have len(Tags()) elements.
// Hits are distinct when their first words differ: repeating a word, or a word
// matched by several entries of the tag, adds nothing; several different words
// or phrasings add up. t is the tokenized text the hits refer to.
func (l *Lexicon) TagScores(t *Tokens, hits []Hit, perTag int, score []float64, best []int) {
	for k := range score {
		score[k], best[k] = 0, -1
	}
	if perTag < 1 {
		perTag = 1
	}
	var top [8]float64
	perTag = min(perTag, len(top))
	if len(hits) > maxScoredHits {
		hits = hits[:maxScoredHits] // bounds the quadratic de-duplication
	}
	for k := range score {
		n := 0
		for i, h := range hits {
			if l.entryTag[h.Entry] != k {
				continue
			}
			// One word counts once per tag, at its strongest entry.
			w := l.entries[h.Entry].Weight
			dup := false
			for j, p := range hits {
				if j == i || l.entryTag[p.Entry] != k || !bytes.Equal(t.Word(p.From), t.Word(h.From)) {
					continue
				}
				pw := l.entries[p.Entry].Weight
				if pw > w || pw == w && j < i {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			if best[k] < 0 || w > l.entries[hits[best[k]].Entry].Weight {
				best[k] = i
			}
			// Keep the perTag largest weights.
			if n < perTag {
				top[n] = w
				n++
				continue
			}
			lo := 0
			for j := 1; j < n; j++ {
				if top[j] < top[lo] {
					lo = j
				}
			}
			if w > top[lo] {
				top[lo] = w
			}
		}
		miss := 1.0
		for j := range n {
			miss *= 1 - top[j]
		}
		score[k] = 1 - miss
	}
}
