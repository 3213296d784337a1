package injection

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
	Name     = "injection"
	Version  = "1.0.0"
	Category = "prompt_injection"
)

// Defaults and bounds of Config.
const (
	// DefaultThreshold is the score at or above which a finding is reported.
	DefaultThreshold = 0.5
	// DefaultMaxSpans caps the evidence spans of one finding.
	DefaultMaxSpans = 20
	// MaxSpansLimit bounds Config.MaxSpans.
	MaxSpansLimit = 1000
	// maxTextBytes: only the first this many bytes of a text are scanned, which
	// bounds the cost of a pathological interaction.
	maxTextBytes = 64 << 10
)

// Scoring constants.
const (
	scoreEncodedInstruction = 0.95 // an override or reveal hidden in an encoded payload
	scoreTagChars           = 0.8  // Unicode tag characters (invisible ASCII)
	scoreInvisible          = 0.55 // a cluster of zero-width or bidi controls
	scoreEncodedText        = 0.3  // a base64 or hex blob that decodes to text
	embeddedBoost           = 0.1  // instructions inside pasted content or tool output
	discussionDamp          = 0.55 // multiplier when the text discusses injection (2 cues)
	discussionDampStrong    = 0.4  // ... with 3 or more cues
	severityHighScore       = 0.85
)

// Config tunes the detector: the reporting threshold and the evidence-span cap.
// Zero values take DefaultThreshold and DefaultMaxSpans.
type Config = lexicon.Settings

// Detector finds prompt injection. It is safe for concurrent use.
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

// Name is "injection".
func (d *Detector) Name() string { return Name }

// Version is the detector version.
func (d *Detector) Version() string { return Version }

// scratch is pooled per call: most interactions hold no injection.
type scratch struct {
	toks  lexicon.Tokens
	hits  []lexicon.Hit
	blobs []blob
	max   []float64
	best  []int
}

var pool = sync.Pool{New: func() any {
	n := len(lex.Tags())
	return &scratch{max: make([]float64, n), best: make([]int, n)}
}}

// textResult is the verdict on one text.
type textResult struct {
	score   float64
	reasons []string
	spans   []events.Span
}

// Detect reads every non-system request message and the response.
func (d *Detector) Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error) {
	if in == nil {
		return nil, nil
	}
	sc := pool.Get().(*scratch)
	defer pool.Put(sc)
	var (
		best     textResult
		spans    []events.Span
		fromTool bool
		where    []string
	)
	consider := func(r textResult, field string, msg int, role string) {
		if r.score < d.cfg.Threshold {
			return
		}
		for i := range r.spans {
			r.spans[i].Field, r.spans[i].Message = field, msg
		}
		spans = append(spans, r.spans...)
		if role == "tool" || role == "function" {
			fromTool = true
		}
		label := field
		if field == "prompt" {
			label = fmt.Sprintf("%s message %d", role, msg)
		}
		where = append(where, label)
		if r.score > best.score {
			best = r
		}
	}
	for i, m := range in.Request.Messages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.Role == "system" || m.Role == "developer" {
			continue
		}
		consider(analyze(sc, m.Content, m.Role == "tool" || m.Role == "function"), "prompt", i, m.Role)
	}
	consider(analyze(sc, in.Response.Content, false), "response", 0, "assistant")
	if best.score == 0 {
		return nil, nil
	}
	severity := events.SeverityMedium
	if best.score >= severityHighScore || fromTool {
		severity = events.SeverityHigh
	}
	if len(spans) > d.cfg.MaxSpans {
		spans = spans[:d.cfg.MaxSpans]
	}
	return []events.Finding{{
		Detector:        Name,
		DetectorVersion: Version,
		Category:        Category,
		Severity:        severity,
		Score:           best.score,
		Threshold:       d.cfg.Threshold,
		Spans:           spans,
		Explanation:     "possible prompt injection (" + strings.Join(best.reasons, ", ") + ") in " + strings.Join(where, ", "),
	}}, nil
}

// Analyze scores one text; exported for the scan tool's per-text use and tests.
func Analyze(text string) (score float64, reasons []string) {
	sc := pool.Get().(*scratch)
	defer pool.Put(sc)
	r := analyze(sc, text, false)
	return r.score, r.reasons
}

// analyze scores one text. inTool marks tool or function output, which is
// embedded content by definition.
func analyze(sc *scratch, text string, inTool bool) textResult {
	if len(text) > maxTextBytes {
		text = text[:maxTextBytes]
	}
	var r textResult
	lexicon.Tokenize(text, &sc.toks)
	sc.hits = lex.Match(&sc.toks, sc.hits[:0])
	lex.Tally(sc.hits, sc.max, sc.best)

	// Noisy-OR over the scored tags.
	miss := 1.0
	for _, tag := range scored {
		k := lex.Tag(tag)
		if sc.max[k] == 0 {
			continue
		}
		miss *= 1 - sc.max[k]
		r.reasons = append(r.reasons, tag)
		h := sc.hits[sc.best[k]]
		s, e := sc.toks.Span(h.From, h.To)
		r.spans = append(r.spans, events.Span{Start: s, End: e, Kind: tag})
	}
	score := 1 - miss
	if score > 0 {
		embedded := inTool || sc.max[lex.Tag(tagEmbedded)] > 0
		discussion := countTag(sc.hits, lex.Tag(tagDiscussion))
		if quotedInstruction(sc) {
			discussion++ // 'ignore previous instructions' in quotes is cited, not given
		}
		switch {
		case inTool:
			score = min(1, score+embeddedBoost)
		case embedded && discussion < 2:
			score = min(1, score+embeddedBoost)
		case discussion >= 3:
			score *= discussionDampStrong
		case discussion == 2:
			score *= discussionDamp
		case discussion == 1:
			score *= (1 + discussionDamp) / 2
		}
	}

	// Encoded and hidden payloads.
	sc.blobs = findBlobs(text, sc.blobs[:0])
	for _, b := range sc.blobs {
		s := blobScore(sc, b)
		if s == 0 {
			continue
		}
		score = 1 - (1-score)*(1-s)
		r.reasons = append(r.reasons, b.kind+" payload")
		r.spans = append(r.spans, events.Span{Start: b.start, End: b.end, Kind: b.kind})
	}
	r.score = score
	slices.SortFunc(r.spans, func(a, b events.Span) int { return a.Start - b.Start })
	return r
}

// blobScore rates a payload: an instruction inside it is strong evidence.
func blobScore(sc *scratch, b blob) float64 {
	base := scoreEncodedText
	switch b.kind {
	case "tags":
		base = scoreTagChars
	case "invisible":
		return scoreInvisible
	}
	var inner lexicon.Tokens
	lexicon.Tokenize(b.decoded, &inner)
	hits := lex.Match(&inner, nil)
	for _, h := range hits {
		switch lex.Entry(h.Entry).Tag {
		case tagOverride, tagReveal, tagReassign, tagExfil:
			return scoreEncodedInstruction
		}
	}
	return base
}

// quotedInstruction reports an override or reveal hit that starts right after
// an opening quotation mark.
func quotedInstruction(sc *scratch) bool {
	for _, h := range sc.hits {
		switch lex.Entry(h.Entry).Tag {
		case tagOverride, tagReveal:
			if sc.toks.Has(h.From, lexicon.FlagQuoted) {
				return true
			}
		}
	}
	return false
}

func countTag(hits []lexicon.Hit, k int) int {
	n := 0
	for _, h := range hits {
		if lex.EntryTag(h.Entry) == k {
			n++
		}
	}
	return n
}
