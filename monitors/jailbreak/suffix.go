package jailbreak

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Adversarial-suffix measure (GCG-style attacks append a string of broken
// tokens, brackets and symbols to a request). Bounds and thresholds:
const (
	suffixChunks     = 30 // whitespace-separated chunks of the last line examined
	minHeadWords     = 4  // the line must start like a sentence
	minWeirdChunks   = 3
	weirdShareStrong = 0.3
	weirdShareWeak   = 0.2
	scoreSuffix      = 0.8
	scoreSuffixWeak  = 0.5
	maxCodeLines     = 3 // more code-like lines than this: pasted code, not an attack
)

// suffixScore rates the end of the last non-empty line of text.
func suffixScore(text string) (score float64, start, end int) {
	if strings.Contains(text, "```") || codeLines(text) > maxCodeLines {
		return 0, 0, 0
	}
	line := strings.TrimRight(text, " \n\t")
	lineStart := strings.LastIndexByte(line, '\n') + 1
	line = line[lineStart:]
	chunks := strings.Fields(line)
	if len(chunks) < minHeadWords+minWeirdChunks {
		return 0, 0, 0
	}
	head := 0
	for _, c := range chunks[:minHeadWords] {
		if plainWord(c) {
			head++
		}
	}
	if head < minHeadWords-1 {
		return 0, 0, 0
	}
	tail := chunks
	if len(tail) > suffixChunks {
		tail = tail[len(tail)-suffixChunks:]
	}
	// Weigh the region from the first weird chunk to the end: a suffix is a
	// dense run of them; a chunk thick with symbols counts twice.
	weird, first := 0, -1
	for i, c := range tail {
		if w := weirdChunk(c); w > 0 {
			weird += w
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return 0, 0, 0
	}
	share := float64(weird) / float64(len(tail)-first)
	switch {
	case weird >= minWeirdChunks+1 && share >= weirdShareStrong:
		score = scoreSuffix
	case weird >= minWeirdChunks && share >= weirdShareWeak:
		score = scoreSuffixWeak
	default:
		return 0, 0, 0
	}
	// Span: from the first weird chunk of the tail to the line end, in code points.
	off := strings.Index(line, tail[first])
	bs := lineStart + max(off, 0)
	start = utf8.RuneCountInString(text[:bs])
	end = start + utf8.RuneCountInString(strings.TrimRight(text[bs:], " \n\t"))
	return score, start, end
}

// plainWord: letters with at most trailing punctuation.
func plainWord(c string) bool {
	c = strings.TrimRight(c, ".,;:!?\"')")
	if c == "" {
		return false
	}
	for _, r := range c {
		if !unicode.IsLetter(r) && r != '-' && r != '\'' {
			return false
		}
	}
	return true
}

// weirdChunk reports a chunk that prose does not produce: code symbols glued
// to letters, three or more punctuation marks, a case hump inside a word
// ("compressToString"), capitals running into lower case ("XVIIIblogs"), or a
// leading '!', '+' or '=' before letters ("!Bit").
func weirdChunk(c string) int {
	letters, symbols, punct, humps := 0, 0, 0, 0
	upperRun, lowerAfterUpper, lowerRun := 0, 0, 0
	var prev rune
	for i, r := range c {
		switch {
		case unicode.IsLetter(r):
			letters++
			if unicode.IsUpper(r) {
				// A hump after 3+ lower-case letters: "compressToString",
				// not "iPhone" or "McDonald".
				if i > 0 && unicode.IsLower(prev) && lowerRun >= 3 {
					humps++
				}
				upperRun++
				lowerAfterUpper, lowerRun = 0, 0
			} else {
				lowerRun++
				if upperRun >= 2 {
					lowerAfterUpper++
					if lowerAfterUpper >= 2 {
						humps++
						upperRun = 0
					}
				} else {
					upperRun = 0
				}
			}
		case strings.ContainsRune("{}[]<>\\|^~=`$#@*_", r):
			symbols++
		case strings.ContainsRune("()\"'.,;:!?-+/", r):
			punct++
			if i == 0 && (r == '!' || r == '+') && len(c) > 1 {
				symbols++
			}
			upperRun, lowerRun = 0, 0
		default:
			upperRun, lowerRun = 0, 0
		}
		prev = r
	}
	switch {
	case symbols+punct >= 4 && symbols > 0:
		return 2
	case symbols > 0 && (letters > 0 || symbols+punct >= 2):
		return 1
	case punct >= 3:
		return 1
	case humps >= 1 && letters >= 5 && humps <= 3:
		return 1
	}
	return 0
}

// codeLines counts lines that look like source code.
func codeLines(text string) int {
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasSuffix(t, ";") || strings.HasSuffix(t, "{") || strings.HasPrefix(t, "}") ||
			strings.HasPrefix(t, "def ") || strings.HasPrefix(t, "func ") || strings.HasPrefix(t, "import ") ||
			strings.HasPrefix(t, "#include") || strings.HasPrefix(t, "//") {
			n++
		}
	}
	return n
}
