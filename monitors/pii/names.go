package pii

import "strings"

// Person-name vocabulary, lower case.
var (
	// nameContext words before a name: "my name is", "Mr.", "called", "Dear".
	nameContext = words(`name named called call im mr mrs ms miss mx dr prof sir madam dear hi hello hey
		user commenter regards sincerely signed contact meet met married wife husband son daughter kid child
		friend colleague boss mother father brother sister uncle aunt grandfather grandmother grandma grandpa
		starring directed author actor actress singer producer says said`)
	// personVerbs after a capitalised word at a sentence start suggest a
	// person: "Aniela is very reliable", "Rintanen began writing".
	personVerbs = words(`is was lives lived spent began begins said says told asked wants wanted loves
		likes went has had works worked married studied wrote`)
	// personNouns after a possessive: "Matej's address", "Jennifer's daughter".
	personNouns = words(`address phone email number account birthday house home car wife husband son daughter
		mother father brother sister friend boyfriend girlfriend family kids children parents name`)
	// nameParticles join the parts of a name: "Maika van de Noort".
	nameParticles = words(`van von de der den da di du del della dos das le la bin ibn al el ter ten mac st`)
	// orgWords after a capitalised run make it an organisation.
	orgWords = words(`ltd inc llc plc gmbh corp co company group bank university ag sa bv ab oy as
		institute foundation association council ministry department hospital school college club team
		technologies technology solutions systems services movers transit software labs partners holdings
		industries international media network networks consulting capital ventures enterprises associates
		corporation incorporated limited`)
	// notNames are capitalised words that start many sentences or titles.
	notNames = words(`the a an i my your our their his her this that these those what when where why how who which
		is are was were be do does did can could will would should may might must shall hello hi hey dear yes no
		ok okay please thanks thank sorry bot user name address phone email mobile fax desk date time card number
		account bank credit debit visa street road avenue suite apt unit box city country state street personal
		info website note notes subject re fw from to cc dr mr mrs ms prof sir god jesus lord christ by answer
		question q it there here he she we they you everything nothing someone everyone something today
		tomorrow yesterday life love money home work devil satan monday tuesday wednesday thursday friday
		saturday sunday january february march april june july august september october november december
		but and or so if then yet also not`)
)

// maxNameTokens bounds one name.
const maxNameTokens = 4

// scanPersons appends person names: runs of up to four capitalised words on
// one line (initials and particles allowed) that contain a given name or a
// surname from the gazetteer or a word with surname morphology, or that follow
// a context word ("my name is", "Mr.", "called", "Name:"); a lower-case given
// name only with such evidence (a speaker label, a surname after it).
func scanPersons(w *wordText, dst []Match, base int) []Match {
	n := w.n()
	first := len(dst)
	for i := 0; i < n; i++ {
		if !w.nameStart(i) {
			continue
		}
		st0, _ := w.span(i, i)
		if overlaps(dst[base:], st0, st0+1) {
			continue
		}
		j := w.nameRun(i)
		a, b, ok := w.judgeName(i, j)
		if !ok {
			continue
		}
		dst = w.addPerson(dst, base, a, b)
		i = j
	}
	if len(dst) == first {
		return dst
	}
	return w.spreadNames(dst, base, first)
}

func (w *wordText) addPerson(dst []Match, base, a, b int) []Match {
	st, en := w.span(a, b)
	en = trimPossessive(w.s, st, en)
	if overlaps(dst[base:], st, en) {
		return dst
	}
	return append(dst, Match{Kind: KindPerson, ByteStart: st, ByteEnd: en})
}

// spreadNames marks more capitalised words as names once some were found: the
// same word elsewhere in the text ("Nikolaj ... Nikolaj Petrussen"), and the
// members of a list with a name in it ("Kónya, Becker and Vasquez").
func (w *wordText) spreadNames(dst []Match, base, first int) []Match {
	n := w.n()
	isPerson := make([]bool, n)
	known := map[string]bool{}
	k := 0
	for i := 0; i < n; i++ {
		st, en := w.span(i, i)
		for k < len(dst[first:]) && dst[first+k].ByteEnd <= st {
			k++
		}
		for _, m := range dst[first:] {
			if m.ByteStart <= st && en <= m.ByteEnd+2 && m.Kind == KindPerson {
				isPerson[i] = true
				known[w.bare(i)] = true
			}
		}
	}
	candidate := func(i int) bool {
		return !isPerson[i] && w.title(i) && w.letters(i) && !notNames[w.words[i]] && !w.org(i) &&
			!w.initial(i) && !nameParticles[w.words[i]]
	}
	for pass := 0; pass < 3; pass++ {
		changed := false
		for i := 0; i < n; i++ {
			if !candidate(i) {
				continue
			}
			listed := i >= 2 && isPerson[i-2] && coord(w, i-1) ||
				i >= 1 && isPerson[i-1] && strings.TrimSpace(w.gap(i)) == "," ||
				i+2 < n && isPerson[i+2] && coord(w, i+1) ||
				i+1 < n && isPerson[i+1] && strings.TrimSpace(w.gap(i+1)) == ","
			if !listed && !known[w.bare(i)] {
				continue
			}
			st, en := w.span(i, i)
			en = trimPossessive(w.s, st, en)
			if overlaps(dst[base:], st, en) {
				continue
			}
			dst = append(dst, Match{Kind: KindPerson, ByteStart: st, ByteEnd: en})
			isPerson[i], changed = true, true
		}
		if !changed {
			break
		}
	}
	return dst
}

// coord reports a coordinating word at token i ("and", "or", "&").
func coord(w *wordText, i int) bool {
	switch w.words[i] {
	case "and", "or", "und", "et", "y", "e":
		return true
	}
	return false
}

// word i with a trailing possessive "'s" removed ("Jennifer's" → "jennifer").
func (w *wordText) bare(i int) string {
	wd := w.words[i]
	raw := w.raw(i)
	if strings.HasSuffix(wd, "s") && (strings.Contains(raw, "'s") || strings.Contains(raw, "’s")) {
		return wd[:len(wd)-1]
	}
	return wd
}

func trimPossessive(s string, st, en int) int {
	for _, suf := range []string{"'s", "’s"} {
		if strings.HasSuffix(s[st:en], suf) {
			return en - len(suf)
		}
	}
	return en
}

// org reports a capitalised organisation word ("Ltd", "Inc", "AS").
func (w *wordText) org(i int) bool { return orgWords[w.words[i]] && (w.title(i) || w.upper(i)) }

// initial reports a single-letter word ("M" in "Janka M. Szász").
func (w *wordText) initial(i int) bool {
	return len([]rune(w.words[i])) == 1 && w.letters(i)
}

// nameStart reports a token that may start a name.
func (w *wordText) nameStart(i int) bool {
	if !w.letters(i) || notNames[w.words[i]] || w.initial(i) {
		return false
	}
	if w.title(i) || givenNames[w.bare(i)] {
		return true
	}
	// "leidy t muris": lower case, an initial in the middle.
	return i+2 < w.n() && w.lowerInitial(i+1) && w.letters(i+2) && !w.sentenceStart(i+1) && !w.sentenceStart(i+2) &&
		w.joined(i+1, false) && w.joined(i+2, false) && !addressStop[w.words[i]] && !addressStop[w.words[i+2]]
}

// lowerInitial reports a lower-case initial that is not a one-letter word
// ("a", "i", "o", "e", "y", "u").
func (w *wordText) lowerInitial(i int) bool {
	if !w.initial(i) {
		return false
	}
	switch w.words[i] {
	case "a", "i", "o", "e", "y", "u":
		return false
	}
	return true
}

// nameRun returns the last token of the run of name-like tokens from i on
// the same line.
func (w *wordText) nameRun(i int) int {
	j := i
	lower := !w.title(i)
	for k := i + 1; k < w.n() && k-i < maxNameTokens; k++ {
		if !w.joined(k, false) || !w.letters(k) {
			break
		}
		wd := w.words[k]
		switch {
		case nameParticles[wd] && k+1 < w.n() && w.joined(k+1, false) && (w.title(k+1) || lower):
			continue
		case w.initial(k) && w.title(k) || lower && w.lowerInitial(k):
			continue
		case lower && (givenNames[wd] || surnameLike(w.bare(k)) || w.lowerInitial(k-1)):
		case !lower && w.title(k) && !notNames[wd]:
		default:
			return lastNonParticle(w, i, j)
		}
		j = k
		if strings.Contains(w.raw(k), "'") || strings.Contains(w.raw(k), "’") {
			break
		}
	}
	return lastNonParticle(w, i, j)
}

func lastNonParticle(w *wordText, i, j int) int {
	for j > i && (nameParticles[w.words[j]] || w.initial(j)) {
		j--
	}
	return j
}

// judgeName decides whether tokens [i, j] are a person's name.
func (w *wordText) judgeName(i, j int) (a, b int, ok bool) {
	if j+1 < w.n() && w.org(j+1) && w.joined(j+1, true) {
		return 0, 0, false
	}
	for k := i; k <= j; k++ {
		if w.org(k) {
			return 0, 0, false
		}
	}
	given, surname, morph, ambiguous := 0, 0, 0, 0
	for k := i; k <= j; k++ {
		wd := w.bare(k)
		switch {
		case givenNames[wd]:
			given++
		case surnames[wd]:
			surname++
		case ambiguousGiven[wd]:
			ambiguous++
		case surnameLike(wd):
			morph++
		}
	}
	ctx := w.nameContextBefore(i)
	weakCtx := i > 0 && w.joined(i, false) && (w.words[i-1] == "by" || w.words[i-1] == "with")
	lower := !w.title(i)
	count := j - i + 1
	switch {
	case lower:
		// Lower case: a given name with a surname, a context word or a speaker
		// label; or "first m last" with an initial in the middle.
		if givenNames[w.bare(i)] && (count >= 2 && (surname+morph+given >= 2) || ctx || w.speaker(j)) {
			return i, j, true
		}
		if count == 3 && w.lowerInitial(i+1) || count >= 2 && morph+surname > 0 && w.wholeLine(i, j) {
			return i, j, true
		}
	case count >= 2:
		if given+surname+morph > 0 || ctx || ambiguous > 0 && count >= 2 && (given+surname+morph > 0) {
			return i, j, true
		}
		if w.blockFirstLine(i, j) || weakCtx && !w.sentenceStart(i) {
			return i, j, true
		}
	default:
		if given > 0 || ctx || w.speaker(j) {
			return i, j, true
		}
		if (surname > 0 || morph > 0) && !w.sentenceStart(i) {
			return i, j, true
		}
		if w.possessiveOf(j) || w.sentenceStart(i) && (w.personVerbAfter(j) || w.vocative(j)) {
			return i, j, true
		}
	}
	return 0, 0, false
}

// nameContextBefore reports a context word among the two tokens before i, or
// a "Name:" label.
func (w *wordText) nameContextBefore(i int) bool {
	for k := i - 1; k >= 0 && k >= i-2; k-- {
		if w.newlineBefore(k+1) || w.sentenceStart(k+1) && k+1 < i {
			break
		}
		if nameContext[w.words[k]] {
			return true
		}
	}
	return false
}

// speaker reports a name used as a dialogue label: at a line start, followed
// by ':'.
func (w *wordText) speaker(j int) bool {
	i := j
	for i > 0 && !w.newlineBefore(i) && w.joined(i, false) {
		i--
	}
	if i != 0 && !w.newlineBefore(i) {
		return false
	}
	// The label is followed by a quotation: Zuzana: "Who are you?"
	rest := w.s[w.tok(j).ByteEnd:]
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, ":") {
		return false
	}
	rest = strings.TrimLeft(rest[1:], " ")
	if strings.HasPrefix(rest, "\"") || strings.HasPrefix(rest, "“") || strings.HasPrefix(rest, "'") {
		return true
	}
	return w.dialogue()
}

// dialogue reports a text with at least two lines of the form "Name: words".
func (w *wordText) dialogue() bool {
	lines := 0
	for i := 0; i < w.n(); i++ {
		if (i == 0 || w.newlineBefore(i)) && w.title(i) && !notNames[w.words[i]] && w.letters(i) {
			rest := strings.TrimLeft(w.s[w.tok(i).ByteEnd:], " ")
			if strings.HasPrefix(rest, ":") && !strings.HasPrefix(strings.TrimLeft(rest[1:], " "), "\n") && len(strings.TrimSpace(rest)) > 1 {
				lines++
			}
		}
	}
	return lines >= 2
}

// blockFirstLine reports a run that is a whole line at the top of a text
// block, the way signatures and contact cards start ("Selina Eldarkhanov\n").
func (w *wordText) blockFirstLine(i, j int) bool {
	if !(i == 0 || w.blankLineBefore(i)) && !(w.newlineBefore(i) && strings.ContainsAny(w.gap(i), ">?")) {
		return false
	}
	return j+1 < w.n() && w.newlineBefore(j+1) || j+1 == w.n()
}

// possessiveOf reports "Name's address": a possessive followed by a personal noun.
func (w *wordText) possessiveOf(j int) bool {
	raw := w.raw(j)
	return (strings.HasSuffix(raw, "'s") || strings.HasSuffix(raw, "’s")) && j+1 < w.n() && personNouns[w.words[j+1]]
}

// personVerbAfter reports a verb that people do right after token j ("Aniela
// is very reliable").
func (w *wordText) personVerbAfter(j int) bool {
	if j+1 >= w.n() || !personVerbs[w.words[j+1]] || !w.joined(j+1, false) || len(w.words[j]) < 3 || w.upper(j) {
		return false
	}
	// "Zoolander is a film": a definition, not a person.
	if v := w.words[j+1]; (v == "is" || v == "was") && j+2 < w.n() {
		switch w.words[j+2] {
		case "a", "an", "the", "found", "not", "one", "in", "on", "at", "part", "located":
			return false
		}
	}
	return true
}

// wholeLine reports that tokens [i, j] are all of their line.
func (w *wordText) wholeLine(i, j int) bool {
	return (i == 0 || w.newlineBefore(i)) && (j+1 == w.n() || w.newlineBefore(j+1))
}

// vocative reports a name addressed at the start of a sentence: "Kuba, can I
// please speak to your boss?"
func (w *wordText) vocative(j int) bool {
	if j+1 >= w.n() || strings.TrimSpace(w.gap(j+1)) != "," {
		return false
	}
	switch w.words[j+1] {
	case "can", "could", "would", "will", "please", "i", "you", "do", "are", "have", "did", "is", "we", "let", "thanks", "thank":
		return true
	}
	return false
}
