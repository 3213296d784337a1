package policies

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds on a topic list (it comes from a trial file, outside input).
const (
	// MaxTopics bounds the number of topics of one extractor.
	MaxTopics = 256
	// MaxKeywordBytes bounds one keyword.
	MaxKeywordBytes = 128
	// MaxKeywords bounds the keywords of all topics together.
	MaxKeywords = 20000
	// maxTopicNameBytes bounds a topic name.
	maxTopicNameBytes = 64
)

// Values of Signals.Language.
const (
	LanguageEnglish = "en"
	LanguageChinese = "zh"
	LanguageUnknown = "und"
)

// Values of Signals.PIITypes.
const (
	PIICard  = "card"
	PIIEmail = "email"
	PIIPhone = "phone"
)

// Topics maps a topic name (what policies see in signals.topics, e.g.
// "medical_dosing") to its keywords, English or Chinese, matched
// case-insensitively (ASCII). A keyword whose first or last character is an
// ASCII letter, digit or '_' matches only on a word boundary at that end ("dose"
// does not match "overdosed"); other keywords (Chinese) match as substrings.
type Topics map[string][]string

// injectionPhrase is one prompt-injection cue and how much it weighs (0..1).
type injectionPhrase struct {
	text   string
	weight float64
}

// injectionPhrases are the built-in cues, English and Chinese. English cues match
// from a word start and may continue ("instruction" matches "instructions").
// The score combines the weights of the distinct cues found as
// 1 - Π(1 - weight), rounded to two decimals.
var injectionPhrases = []injectionPhrase{
	{"ignore previous instruction", 0.9},
	{"ignore all previous instruction", 0.9},
	{"ignore the previous instruction", 0.9},
	{"ignore prior instruction", 0.9},
	{"ignore all prior instruction", 0.9},
	{"ignore your instruction", 0.8},
	{"ignore the above", 0.6},
	{"ignore all the above", 0.6},
	{"disregard previous instruction", 0.9},
	{"disregard all previous", 0.8},
	{"disregard the above", 0.6},
	{"disregard your instruction", 0.8},
	{"forget all previous", 0.7},
	{"forget your instruction", 0.8},
	{"forget everything above", 0.6},
	{"reveal your system prompt", 0.9},
	{"reveal the system prompt", 0.9},
	{"show me your system prompt", 0.8},
	{"print your system prompt", 0.8},
	{"repeat your system prompt", 0.8},
	{"what is your system prompt", 0.5},
	{"your system prompt", 0.3},
	{"you are now in developer mode", 0.7},
	{"developer mode", 0.4},
	{"jailbreak", 0.5},
	{"do anything now", 0.6},
	{"without any restriction", 0.4},
	{"no longer bound by", 0.5},
	{"pretend you have no", 0.5},
	{"忽略之前的指令", 0.9},
	{"忽略之前的所有指令", 0.9},
	{"忽略以上指令", 0.9},
	{"忽略上面的指令", 0.9},
	{"忽略所有指令", 0.9},
	{"忽略前面的", 0.6},
	{"忽略以上", 0.6},
	{"无视之前的", 0.8},
	{"无视以上", 0.6},
	{"忘记你的指令", 0.8},
	{"忘记之前的", 0.6},
	{"显示你的系统提示", 0.9},
	{"告诉我你的系统提示", 0.9},
	{"泄露系统提示", 0.9},
	{"输出你的系统提示", 0.9},
	{"系统提示词", 0.3},
	{"开发者模式", 0.4},
	{"越狱", 0.5},
	{"不受任何限制", 0.4},
}

// pattern kinds.
const (
	kindTopic uint8 = iota
	kindInjection
)

// patternInfo says what a matcher pattern means and how it must be bounded.
type patternInfo struct {
	kind       uint8
	boundStart bool // the byte before the match must not be a word byte
	boundEnd   bool // the byte after the match must not be a word byte
	index      int32
	length     int32
}

// Extractor turns prompt text into Signals. It is immutable after NewExtractor
// and safe for concurrent use.
type Extractor struct {
	m        *matcher
	patterns []patternInfo
	topics   []string // sorted; a topic's index is its rank
}

// NewExtractor builds the keyword and injection-cue matcher once. Every problem
// of topics is reported at once, wrapped in ErrConfig.
func NewExtractor(topics Topics) (*Extractor, error) {
	var errs []error
	if len(topics) > MaxTopics {
		errs = append(errs, fmt.Errorf("%w: %d topics, at most %d", ErrConfig, len(topics), MaxTopics))
	}
	names := make([]string, 0, len(topics))
	keywords := 0
	for name, kws := range topics {
		names = append(names, name)
		keywords += len(kws)
	}
	slices.Sort(names)
	if keywords > MaxKeywords {
		return nil, fmt.Errorf("%w: %d keywords, at most %d", ErrConfig, keywords, MaxKeywords)
	}

	x := &Extractor{topics: names}
	var pats []string
	for ti, name := range names {
		if err := validTopicName(name); err != nil {
			errs = append(errs, err)
		}
		if len(topics[name]) == 0 {
			errs = append(errs, fmt.Errorf("%w: topic %q has no keywords", ErrConfig, name))
		}
		for _, kw := range topics[name] {
			norm, err := normaliseKeyword(kw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: topic %q: %w", ErrConfig, name, err))
				continue
			}
			pats = append(pats, norm)
			x.patterns = append(x.patterns, patternInfo{
				kind:       kindTopic,
				boundStart: isWordByte(norm[0]),
				boundEnd:   isWordByte(norm[len(norm)-1]),
				index:      int32(ti),
				length:     int32(len(norm)),
			})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, ph := range injectionPhrases {
		norm := string(foldString(ph.text))
		pats = append(pats, norm)
		x.patterns = append(x.patterns, patternInfo{
			kind:       kindInjection,
			boundStart: isWordByte(norm[0]),
			index:      int32(i),
			length:     int32(len(norm)),
		})
	}
	m, err := newMatcher(pats)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	x.m = m
	return x, nil
}

func validTopicName(name string) error {
	if name == "" || len(name) > maxTopicNameBytes {
		return fmt.Errorf("%w: topic name %q must be 1-%d bytes", ErrConfig, name, maxTopicNameBytes)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_' || b == '-' || b == '.') {
			return fmt.Errorf("%w: topic name %q: use lower-case letters, digits, '_', '-' or '.'", ErrConfig, name)
		}
	}
	return nil
}

// normaliseKeyword trims and folds a keyword the way text is folded at scan time.
func normaliseKeyword(kw string) (string, error) {
	kw = strings.TrimSpace(kw)
	switch {
	case kw == "":
		return "", errors.New("empty keyword")
	case len(kw) > MaxKeywordBytes:
		return "", fmt.Errorf("keyword %.20q... longer than %d bytes", kw, MaxKeywordBytes)
	case !utf8.ValidString(kw):
		return "", fmt.Errorf("keyword %q is not valid UTF-8", kw)
	}
	return string(foldString(kw)), nil
}

func foldString(s string) []byte {
	b := []byte(s)
	for i := range b {
		b[i] = foldByte(b[i])
	}
	return b
}

// TopicNames returns the sorted topic names the extractor knows.
func (x *Extractor) TopicNames() []string { return slices.Clone(x.topics) }

// Extract computes the signals of one prompt given as one or more texts (for
// example the contents of its messages); each text is scanned on its own, so no
// keyword matches across two texts. PIITypes and Topics are sorted, unique and
// never nil. Extract allocates at most once (for the two result lists).
func (x *Extractor) Extract(texts ...string) Signals {
	var st scanState
	for _, t := range texts {
		x.scan(t, &st)
	}

	nPII := st.pii.count()
	nTopics := 0
	for _, w := range st.topics {
		nTopics += bits.OnesCount64(w)
	}
	sig := Signals{
		PIITypes:       []string{},
		Topics:         []string{},
		InjectionScore: injectionScore(st.phrases),
		Language:       st.script.language(),
	}
	if nPII+nTopics > 0 {
		// One backing array for both lists; capacities are capped so an append
		// to one never writes into the other.
		all := make([]string, 0, nPII+nTopics)
		all = st.pii.appendTypes(all)
		for ti, name := range x.topics {
			if st.topics[ti/64]&(1<<(ti%64)) != 0 {
				all = append(all, name)
			}
		}
		sig.PIITypes = all[:nPII:nPII]
		sig.Topics = all[nPII:len(all):len(all)]
	}
	return sig
}

// scanState is what one Extract call accumulates; it lives on the stack.
type scanState struct {
	topics  [MaxTopics / 64]uint64 // bit i: topic i matched
	phrases uint64                 // bit i: injectionPhrases[i] matched
	pii     piiFound
	script  scriptCounts
	numEnd  int // end of the last number run in the current text
}

// scan makes the single pass over t: every byte steps the matcher (topics and
// injection cues, word boundaries checked on the original bytes), ASCII letters
// are counted without a branch, and the few bytes that can start PII or a
// multi-byte character go to scanSpecial.
func (x *Extractor) scan(t string, st *scanState) {
	m := x.m
	delta, class := m.delta, &m.class
	row := int32(0)
	latin := 0
	st.numEnd = 0
	for i := 0; i < len(t); i++ {
		b := t[i]
		row = delta[row+class[b]]
		f := byteFlags[b]
		latin += int(f & flagLetter)
		if f&flagSpecial != 0 {
			scanSpecial(t, i, st)
		}
		if row >= 0 {
			continue
		}
		row = ^row
		for _, id := range m.outputs(row) {
			p := &x.patterns[id]
			if p.boundEnd && i+1 < len(t) && isWordByte(t[i+1]) {
				continue
			}
			if start := i + 1 - int(p.length); p.boundStart && start > 0 && isWordByte(t[start-1]) {
				continue
			}
			if p.kind == kindTopic {
				st.topics[p.index/64] |= 1 << (p.index % 64)
			} else {
				st.phrases |= 1 << p.index
			}
		}
	}
	st.script.latin += latin
}

// injectionScore combines the weights of the cues found, in a fixed order so the
// same cues always give the same score.
func injectionScore(seen uint64) float64 {
	if seen == 0 {
		return 0
	}
	miss := 1.0
	for i, ph := range injectionPhrases {
		if seen&(1<<i) != 0 {
			miss *= 1 - ph.weight
		}
	}
	return math.Round((1-miss)*100) / 100
}

// isWordByte reports an ASCII letter, digit or '_': the bytes a word boundary
// separates. Non-ASCII bytes are boundaries, so "AI" matches in "用AI写".
func isWordByte(b byte) bool { return wordBytes[b] }

var wordBytes = func() (t [256]bool) {
	for b := 0; b < 256; b++ {
		t[b] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_'
	}
	return t
}()
