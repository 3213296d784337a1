package jailbreak

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/monitors"
	"github.com/stagegate/stagegate/monitors/lexicon"
)

// Identity of the detector.
const (
	Name     = "jailbreak"
	Version  = "1.0.0"
	Category = "jailbreak"
)

// Defaults and bounds of Config.
const (
	// DefaultThreshold is the score at or above which a finding is reported.
	DefaultThreshold = 0.5
	// DefaultMaxSpans caps the evidence spans of one finding.
	DefaultMaxSpans = 20
	// MaxSpansLimit bounds Config.MaxSpans.
	MaxSpansLimit = 1000
	// maxTextBytes: only the first this many bytes of a message are scanned.
	maxTextBytes = 64 << 10
)

// Scoring constants.
const (
	perTag            = 3    // distinct phrasings counted per tag
	benignRoleDamp    = 0.4  // persona evidence kept when the role is an ordinary job
	hypoWithoutHarm   = 0.4  // framing without a harmful goal counts this much
	obfuscationFactor = 0.8  // obfuscation requests alone are weaker
	harmBoost         = 0.3  // a harmful goal on top of a framed request
	harmBoostFloor    = 0.3  // ... applied only above this score
	severityHighScore = 0.85 // a clear jailbreak
)

// Config tunes the detector: the reporting threshold and the evidence-span cap.
// Zero values take DefaultThreshold and DefaultMaxSpans.
type Config = lexicon.Settings

// Detector finds jailbreak attempts. It is safe for concurrent use.
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

// Name is "jailbreak".
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

// Tag indexes, resolved once.
var (
	kPersona    = lex.Tag(tagPersona)
	kUnbound    = lex.Tag(tagUnbound)
	kSuppress   = lex.Tag(tagSuppress)
	kHypo       = lex.Tag(tagHypo)
	kPrefix     = lex.Tag(tagPrefix)
	kDual       = lex.Tag(tagDualOutput)
	kMode       = lex.Tag(tagMode)
	kHarm       = lex.Tag(tagHarm)
	kObfuscate  = lex.Tag(tagObfuscate)
	kBenignRole = lex.Tag(tagBenignRole)
)

// result is the verdict on one message.
type result struct {
	score   float64
	reasons []string
	spans   []events.Span
}

// Detect reads the user's messages (not the system prompt, not the answer).
func (d *Detector) Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error) {
	if in == nil {
		return nil, nil
	}
	sc := pool.Get().(*scratch)
	defer pool.Put(sc)
	var (
		best  result
		spans []events.Span
		where []string
	)
	for i, m := range in.Request.Messages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.Role != "user" && m.Role != "" {
			continue
		}
		r := analyze(sc, m.Content)
		if r.score < d.cfg.Threshold {
			continue
		}
		for k := range r.spans {
			r.spans[k].Field, r.spans[k].Message = "prompt", i
		}
		spans = append(spans, r.spans...)
		where = append(where, fmt.Sprintf("user message %d", i))
		if r.score > best.score {
			best = r
		}
	}
	if best.score == 0 {
		return nil, nil
	}
	severity := events.SeverityMedium
	if best.score >= severityHighScore {
		severity = events.SeverityHigh
	}
	if len(spans) > d.cfg.MaxSpans {
		spans = spans[:d.cfg.MaxSpans]
	}
	return []events.Finding{{
		Detector: Name, DetectorVersion: Version, Category: Category,
		Severity: severity, Score: best.score, Threshold: d.cfg.Threshold, Spans: spans,
		Explanation: "possible jailbreak attempt (" + strings.Join(best.reasons, ", ") + ") in " + strings.Join(where, ", "),
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
	sc.hits = lex.Match(&sc.toks, sc.hits[:0])
	lex.TagScores(&sc.toks, sc.hits, perTag, sc.score, sc.best)
	s := sc.score
	persona := s[kPersona]
	if s[kBenignRole] > 0 && s[kUnbound] < 0.5 && s[kSuppress] < 0.5 {
		persona *= benignRoleDamp
	}
	harm := s[kHarm] > 0
	hypo := s[kHypo]
	if !harm {
		hypo *= hypoWithoutHarm
	}
	parts := []struct {
		k int
		v float64
	}{
		{kPersona, persona}, {kUnbound, s[kUnbound]}, {kSuppress, s[kSuppress]}, {kPrefix, s[kPrefix]},
		{kDual, s[kDual]}, {kMode, s[kMode]}, {kObfuscate, s[kObfuscate] * obfuscationFactor}, {kHypo, hypo},
	}
	miss := 1.0
	for _, p := range parts {
		if p.v <= 0 {
			continue
		}
		miss *= 1 - p.v
		if p.v >= 0.2 {
			r.reasons = append(r.reasons, lex.Tags()[p.k])
			h := sc.hits[sc.best[p.k]]
			st, en := sc.toks.Span(h.From, h.To)
			r.spans = append(r.spans, events.Span{Start: st, End: en, Kind: lex.Tags()[p.k]})
		}
	}
	score := 1 - miss
	if suf, st, en := suffixScore(text); suf > 0 {
		score = 1 - (1-score)*(1-suf)
		r.reasons = append(r.reasons, tagSuffix)
		r.spans = append(r.spans, events.Span{Start: st, End: en, Kind: tagSuffix})
	}
	if harm && score >= harmBoostFloor {
		score = 1 - (1-score)*(1-harmBoost)
		r.reasons = append(r.reasons, tagHarm)
	}
	r.score = score
	slices.SortFunc(r.spans, func(a, b events.Span) int { return a.Start - b.Start })
	return r
}
