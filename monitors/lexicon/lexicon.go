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
}

type pattern struct{ elems []elem }

// Lexicon is a compiled set of entries. It is immutable and safe for
// concurrent use.
type Lexicon struct {
	entries    []Entry
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

// parse compiles one pattern.
func parse(s string, scratch *Tokens) (pattern, error) {
	var p pattern
	gap := 0
	for _, f := range strings.Fields(s) {
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
		for _, a := range strings.Split(f, "|") {
			var al alt
			if strings.HasSuffix(a, "*") {
				al.prefix = true
				a = a[:len(a)-1]
			}
			Tokenize(a, scratch)
			if scratch.Len() == 0 {
				return p, fmt.Errorf("alternative %q has no word", a)
			}
			for i := range scratch.List {
				al.toks = append(al.toks, append([]byte(nil), scratch.Word(i)...))
			}
			if al.prefix && len(al.toks[len(al.toks)-1]) < minPrefixLen {
				return p, fmt.Errorf("prefix %q shorter than %d bytes", a, minPrefixLen)
			}
			e.alts = append(e.alts, al)
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
		for ai := range e.alts {
			n := matchAlt(&e.alts[ai], t, pos+s)
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
