package toxicity

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/lexicon"
)

// Identity of the detector.
const (
	Name     = "toxicity"
	Version  = "1.0.0"
	Category = "toxicity"
)

// Defaults and bounds of Config.
const (
	// DefaultThreshold is the score at or above which a finding is reported,
	// chosen on the tune half of the Surge data (EVAL.md): the lowest threshold
	// that kept precision there at 0.95 or more.
	DefaultThreshold = 0.35
	// DefaultMaxSpans caps the evidence spans of one finding.
	DefaultMaxSpans = 20
	// MaxSpansLimit bounds Config.MaxSpans.
	MaxSpansLimit = 1000
	maxTextBytes  = 64 << 10
)

// Scoring constants.
const (
	perTag            = 3
	maskedWeight      = 0.6  // a masked profanity ("f*ck")
	praiseDamp        = 0.3  // profanity intensifying praise
	directAttack      = 0.85 // an attack this strong ("you are a moron") is not praise
	untargetedFactor  = 0.9  // profanity not aimed at anyone
	insultTargetBoost = 1.8  // an insult word next to "you" or "he/she/they"
	discussionDamp    = 0.6  // quoted or discussed
	negationDamp      = 0.3  // "not stupid"
	shoutBoost        = 0.1  // mostly capitals, with profanity or insults
	shoutShare        = 0.6
	stereoGroupBoost  = 0.25 // a generalisation about a group with an insult
	responseBoost     = 0.1  // toxic text written by the model
	severityHighScore = 0.85
)

// Config tunes the detector: the reporting threshold and the evidence-span cap.
// Zero values take DefaultThreshold and DefaultMaxSpans.
type Config = lexicon.Settings

// Detector finds toxic text. It is safe for concurrent use.
type Detector struct {
	cfg Config
}

var _ monitors.Detector = (*Detector)(nil)

// New validates cfg and returns a detector.
func New(cfg Config) (*Detector, error) {
	cfg, err := cfg.Resolve(Name, DefaultThreshold, DefaultMaxSpans, MaxSpansLimit)
	if err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg}, nil
}

// Name is "toxicity".
func (d *Detector) Name() string { return Name }

// Version is the detector version.
func (d *Detector) Version() string { return Version }

type scratch struct {
	toks  lexicon.Tokens
	hits  []lexicon.Hit
	score []float64
	best  []int
}

var pool = sync.Pool{New: func() any {
	n := len(lex.Tags())
	return &scratch{score: make([]float64, n), best: make([]int, n)}
}}

var (
	kProf     = lex.Tag(tagProfanity)
	kInsult   = lex.Tag(tagInsult)
	kSlur     = lex.Tag(tagSlur)
	kAttack   = lex.Tag(tagAttack)
	kThreat   = lex.Tag(tagThreat)
	kDehuman  = lex.Tag(tagDehuman)
	kDerogate = lex.Tag(tagDerogate)
	kYou      = lex.Tag(tagTarget2)
	kTarget   = lex.Tag(tagTarget3)
	kGroup    = lex.Tag(tagGroup)
	kDiscuss  = lex.Tag(tagDiscuss)
	kPraise   = lex.Tag(tagPraise)
	kNegation = lex.Tag(tagNegation)
	kStereo   = lex.Tag(tagStereo)
)

type result struct {
	score   float64
	reasons []string
	spans   []events.Span
}

// Detect reads the user's messages and the response.
func (d *Detector) Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error) {
	if in == nil {
		return nil, nil
	}
	sc := pool.Get().(*scratch)
	defer pool.Put(sc)
	var (
		best     result
		spans    []events.Span
		where    []string
		response bool
	)
	consider := func(r result, field string, msg int, label string) {
		if r.score < d.cfg.Threshold {
			return
		}
		for k := range r.spans {
			r.spans[k].Field, r.spans[k].Message = field, msg
		}
		spans = append(spans, r.spans...)
		where = append(where, label)
		if r.score > best.score {
			best = r
		}
	}
	for i, m := range in.Request.Messages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.Role != "user" && m.Role != "" {
			continue
		}
		consider(analyze(sc, m.Content), "prompt", i, fmt.Sprintf("user message %d", i))
	}
	r := analyze(sc, in.Response.Content)
	if r.score > 0 {
		r.score = min(1, r.score+responseBoost)
		if r.score >= d.cfg.Threshold {
			response = true
		}
	}
	consider(r, "response", 0, "the response")
	if best.score == 0 {
		return nil, nil
	}
	severity := events.SeverityMedium
	if best.score >= severityHighScore || response {
		severity = events.SeverityHigh
	}
	if len(spans) > d.cfg.MaxSpans {
		spans = spans[:d.cfg.MaxSpans]
	}
	return []events.Finding{{
		Detector: Name, DetectorVersion: Version, Category: Category,
		Severity: severity, Score: best.score, Threshold: d.cfg.Threshold, Spans: spans,
		Explanation: "toxic language (" + strings.Join(best.reasons, ", ") + ") in " + strings.Join(where, ", "),
	}}, nil
}

// Analyze scores one text (tests and tools).
func Analyze(text string) (float64, []string) {
	sc := pool.Get().(*scratch)
	defer pool.Put(sc)
	r := analyze(sc, text)
	return r.score, r.reasons
}

func analyze(sc *scratch, text string) result {
	if len(text) > maxTextBytes {
		text = text[:maxTextBytes]
	}
	var r result
	lexicon.Tokenize(text, &sc.toks)
	sc.hits = dropNegatedAttacks(&sc.toks, lex.Match(&sc.toks, sc.hits[:0]))
	lex.TagScores(&sc.toks, sc.hits, perTag, sc.score, sc.best)
	s := sc.score

	prof := s[kProf]
	masked, maskedAt := maskedProfanity(&sc.toks)
	if masked > 0 {
		prof = 1 - (1-prof)*(1-maskedWeight)
	}
	named := nameNear(&sc.toks, sc.hits)
	targeted := s[kYou] > 0 || s[kTarget] > 0 || s[kGroup] > 0 || named
	attack := s[kAttack]
	if s[kPraise] >= 0.4 {
		prof *= praiseDamp
		if attack < directAttack {
			attack *= praiseDamp
		}
	}
	if !targeted {
		prof *= untargetedFactor
	}
	insult := s[kInsult]
	if targeted {
		insult = min(0.9, insult*insultTargetBoost)
	}
	if s[kNegation] > 0 {
		insult *= negationDamp
	}
	stereo := 0.0
	if s[kStereo] > 0 && (s[kInsult] > 0 || s[kDehuman] > 0) {
		stereo = stereoGroupBoost
	}
	parts := []struct {
		name string
		k    int
		v    float64
	}{
		{tagAttack, kAttack, attack}, {tagThreat, kThreat, s[kThreat]}, {tagDehuman, kDehuman, s[kDehuman]},
		{tagSlur, kSlur, s[kSlur]}, {tagDerogate, kDerogate, s[kDerogate]}, {tagProfanity, kProf, prof},
		{tagInsult, kInsult, insult}, {tagStereo, kStereo, stereo},
	}
	miss := 1.0
	for _, p := range parts {
		if p.v <= 0 {
			continue
		}
		miss *= 1 - p.v
		r.reasons = append(r.reasons, p.name)
		if b := sc.best[p.k]; b >= 0 {
			st, en := sc.toks.Span(sc.hits[b].From, sc.hits[b].To)
			r.spans = append(r.spans, events.Span{Start: st, End: en, Kind: p.name})
		} else if p.k == kProf && maskedAt >= 0 {
			st, en := sc.toks.Span(maskedAt, maskedAt+1)
			r.spans = append(r.spans, events.Span{Start: st, End: en, Kind: p.name})
		}
	}
	score := 1 - miss
	if score > 0 && s[kDiscuss] > 0 && s[kAttack] < 0.8 && s[kThreat] == 0 {
		score *= discussionDamp
	}
	if score > 0 && (prof > 0 || insult > 0) && shouting(text) {
		score = min(1, score+shoutBoost)
	}
	r.score = score
	slices.SortFunc(r.spans, func(a, b events.Span) int { return a.Start - b.Start })
	return r
}

// negations cancel an attack that contains them ("you are not stupid").
var negations = map[string]bool{"not": true, "never": true, "isnt": true, "arent": true, "wasnt": true, "no": true, "dont": true, "doesnt": true}

// dropNegatedAttacks removes attack hits that contain a negation, in place.
func dropNegatedAttacks(t *lexicon.Tokens, hits []lexicon.Hit) []lexicon.Hit {
	out := hits[:0]
	for _, h := range hits {
		keep := true
		if lex.EntryTag(h.Entry) == kAttack {
			for i := h.From; i < h.To; i++ {
				if negations[string(t.Word(i))] {
					keep = false
					break
				}
			}
		}
		if keep {
			out = append(out, h)
		}
	}
	return out
}

// nameNear reports a profanity or insult next to a capitalised word that is
// not at a sentence start: "F*ck Lizzo", "Hillary is a loser".
func nameNear(t *lexicon.Tokens, hits []lexicon.Hit) bool {
	for _, h := range hits {
		k := lex.EntryTag(h.Entry)
		if k != kProf && k != kInsult {
			continue
		}
		for j := max(0, h.From-3); j < min(t.Len(), h.To+2); j++ {
			if j >= h.From && j < h.To {
				continue
			}
			if t.Has(j, lexicon.FlagTitle) && (!t.Has(j, lexicon.FlagBreak) || j < h.From && j == h.From-1) {
				return true
			}
		}
	}
	return false
}

// maskedWords are profanities as masked spellings hide them ("f*ck", "sh#t",
// "b****"): a masked token matches a word of the same length whose unmasked
// letters agree.
var maskedWords = []string{"fuck", "fucking", "fucker", "shit", "bitch", "cunt", "dick", "pussy", "asshole", "bastard",
	"whore", "slut", "damn", "crap", "piss", "cock", "twat", "nigger", "nigga", "faggot", "retard", "motherfucker",
	"shithead", "ass", "fucked", "bitches", "fuckin"}

// maskedProfanity counts masked profanities and returns the first one's token.
func maskedProfanity(t *lexicon.Tokens) (n, first int) {
	first = -1
	for i := range t.List {
		if !t.Has(i, lexicon.FlagMasked) {
			continue
		}
		w := t.Word(i)
		for _, p := range maskedWords {
			if maskMatch(w, p) {
				n++
				if first < 0 {
					first = i
				}
				break
			}
		}
	}
	return n, first
}

// maskMatch reports whether the masked word w ('*' for a hidden letter) can
// spell p: same length, the first letter shown and equal, every shown letter
// equal.
func maskMatch(w []byte, p string) bool {
	if len(w) != len(p) || len(w) == 0 || w[0] == '*' {
		return false
	}
	for i := range w {
		if w[i] != '*' && w[i] != p[i] {
			return false
		}
	}
	return true
}

// shouting reports text written mostly in capitals.
func shouting(text string) bool {
	up, letters := 0, 0
	for _, r := range text {
		if unicode.IsLetter(r) {
			letters++
			if unicode.IsUpper(r) {
				up++
			}
		}
	}
	return letters >= 12 && float64(up) >= shoutShare*float64(letters)
}
