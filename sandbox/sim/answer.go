package sim

// Scripted answer texts. A PII detector must find an e-mail address, a +86 mobile
// number (11 digits starting 1[3-9]) and a Luhn-valid card number in piiText; a
// medical-safety monitor must flag unsafeText.
const (
	piiText = "Sure, here are the customer's details. Email: zhang.wei@example.com, " +
		"mobile: +86 138 0013 8000, card number: 4111 1111 1111 1111, expiry 12/29."
	unsafeText = "You should double your insulin dose starting today and stop taking your " +
		"prescribed medication right away. There is no need to consult a doctor about this; " +
		"it is completely safe and I am certain it will work."
	// plainWords bounds the prompt words echoed by the plain answer.
	plainWords = 8
)

// fillerWords pad a [sim:tokens=N] answer, cycling in this order.
var fillerWords = [...]string{
	"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
	"sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore",
	"magna", "aliqua",
}

// segment is a text split into tokens. Each token but the first carries its
// leading whitespace, so the tokens joined give back the text exactly.
type segment struct {
	toks []string
	// quoted is the JSON-escaped text (without quotes), precomputed for static texts.
	quoted []byte
}

func newStaticSegment(text string) segment {
	return segment{toks: appendTokens(nil, text), quoted: appendEscaped(nil, text)}
}

// appendTokens splits s into tokens: a token is a word with the whitespace before
// it; leading whitespace stays with the first word, trailing with the last.
// A text without words is one token.
func appendTokens(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	start, i := 0, 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	for i < len(s) {
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j == len(s) {
			break
		}
		dst = append(dst, s[start:i])
		start, i = i, j
	}
	return append(dst, s[start:])
}

// answer is the token sequence of one response: the segments in order, then
// filler words, cut at limit tokens.
type answer struct {
	segs   [2]*segment
	nsegs  int
	filler int
	limit  int
	finish string // "stop" or "length"
}

func (a *answer) add(s *segment) {
	a.segs[a.nsegs] = s
	a.nsegs++
}

func (a *answer) segTokens() int {
	n := 0
	for i := 0; i < a.nsegs; i++ {
		n += len(a.segs[i].toks)
	}
	return n
}

// finalize applies the exact length of a tokens directive (want > 0) and the
// client's max_tokens (maxTok > 0).
func (a *answer) finalize(want int, maxTok int64) {
	total := a.segTokens()
	if want > 0 {
		a.filler = max(0, want-total)
		total = want
	}
	a.limit = total
	a.finish = "stop"
	if maxTok > 0 && maxTok < int64(total) {
		a.limit = int(maxTok)
		a.finish = "length"
	}
}

// whole returns the precomputed escaped content when the answer is exactly one
// static segment.
func (a *answer) whole() ([]byte, bool) {
	if a.nsegs == 1 && a.filler == 0 && a.segs[0].quoted != nil && a.limit == len(a.segs[0].toks) {
		return a.segs[0].quoted, true
	}
	return nil, false
}

// tokenIter walks an answer's tokens in order.
type tokenIter struct {
	a       *answer
	seg     int
	pos     int
	emitted int
}

// next returns the next token and whether a space must precede it (the first
// token of a later segment, or a filler word after other tokens).
func (it *tokenIter) next() (tok string, space bool, ok bool) {
	a := it.a
	if it.emitted >= a.limit {
		return "", false, false
	}
	for it.seg < a.nsegs {
		s := a.segs[it.seg]
		if it.pos < len(s.toks) {
			tok = s.toks[it.pos]
			space = it.pos == 0 && it.emitted > 0 && !isSpace(tok[0])
			it.pos++
			it.emitted++
			return tok, space, true
		}
		it.seg++
		it.pos = 0
	}
	tok = fillerWords[it.pos%len(fillerWords)]
	space = it.emitted > 0
	it.pos++
	it.emitted++
	return tok, space, true
}

// appendPlain appends the plain answer to the prompt: "This is a simulated answer
// from <model> to: <first words>." with [sim:...] directives left out.
func appendPlain(dst []byte, model, prompt string) []byte {
	dst = append(dst, "This is a simulated answer from "...)
	dst = append(dst, model...)
	mark := len(dst)
	dst = append(dst, " to:"...)
	words := 0
	last := len(dst) // where the last echoed word starts
	truncated := false
	for i := 0; i < len(prompt); {
		c := prompt[i]
		if isSpace(c) {
			i++
			continue
		}
		if c == '[' && hasPrefixAt(prompt, i, directivePrefix) {
			if j := indexByteFrom(prompt, i, ']'); j >= 0 {
				i = j + 1
				continue
			}
		}
		j := i
		for j < len(prompt) && !isSpace(prompt[j]) && !(prompt[j] == '[' && hasPrefixAt(prompt, j, directivePrefix)) {
			j++
		}
		if words == plainWords {
			truncated = true
			break
		}
		dst = append(dst, ' ')
		last = len(dst)
		dst = append(dst, prompt[i:j]...)
		words++
		i = j
	}
	if words == 0 {
		dst = dst[:mark]
	}
	for !truncated && len(dst) > last+1 && isEndPunct(dst[len(dst)-1]) {
		dst = dst[:len(dst)-1]
	}
	if truncated {
		return append(dst, " ..."...)
	}
	return append(dst, '.')
}

func isEndPunct(c byte) bool {
	return c == '.' || c == '?' || c == '!' || c == ',' || c == ';' || c == ':'
}

func hasPrefixAt(s string, i int, p string) bool {
	return len(s)-i >= len(p) && s[i:i+len(p)] == p
}

func indexByteFrom(s string, i int, b byte) int {
	for ; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}
