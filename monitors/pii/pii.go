package pii

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/monitors"
)

// Identity of the detector.
const (
	Name     = "pii"
	Version  = "2.0.0"
	Category = "pii"
)

// Defaults and bounds of Config.
const (
	// DefaultThreshold reports every piece of PII (the lowest score is scorePromptLow).
	DefaultThreshold = 0.3
	// DefaultMaxSpans caps the evidence spans of one finding.
	DefaultMaxSpans = 100
	// MaxSpansLimit bounds Config.MaxSpans.
	MaxSpansLimit = 10000
)

// Scores. A leak (PII in the response that the prompt did not contain) scores
// higher than PII the user typed themselves.
const (
	scoreLeakCard  = 0.95 // a card number leaked
	scoreLeakOther = 0.85 // an e-mail address or phone number leaked
	scoreLeakExtra = 0.02 // per further leaked item
	scorePromptMid = 0.6  // prompt (or echoed) PII with a card number, or 3+ items
	scorePromptLow = 0.4  // other prompt (or echoed) PII
	promptManyPII  = 3
)

// Config tunes the detector. Zero values take the defaults.
type Config struct {
	// Threshold is the score in [0,1] at or above which a finding is reported.
	// Default DefaultThreshold (everything).
	Threshold float64
	// MaxSpans caps the evidence spans of one finding; further matches still count
	// in the explanation. Default DefaultMaxSpans.
	MaxSpans int
}

func (c Config) withDefaults() Config {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MaxSpans == 0 {
		c.MaxSpans = DefaultMaxSpans
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Threshold < 0 || c.Threshold > 1 {
		errs = append(errs, fmt.Errorf("pii: threshold %v not in [0,1]", c.Threshold))
	}
	if c.MaxSpans < 1 || c.MaxSpans > MaxSpansLimit {
		errs = append(errs, fmt.Errorf("pii: max spans %d not in [1,%d]", c.MaxSpans, MaxSpansLimit))
	}
	return errors.Join(errs...)
}

// Detector finds e-mail addresses, phone numbers and payment card numbers in the
// prompt and the response. It is safe for concurrent use.
type Detector struct {
	cfg Config
}

var _ monitors.Detector = (*Detector)(nil)

// New validates cfg and returns a detector.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg.withDefaults()}, nil
}

// Name is "pii".
func (d *Detector) Name() string { return Name }

// Version is the detector version.
func (d *Detector) Version() string { return Version }

// hit is a match located in the interaction.
type hit struct {
	Match
	field string
	msg   int
	text  string // the matched substring
}

// scratch buffers are pooled: Detect runs on every interaction and most have no PII.
type scratch struct {
	ms   []Match
	hits []hit
}

// maxPooledHits: larger buffers (a pathological text) are not kept.
const maxPooledHits = 4096

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (sc *scratch) collect(field string, msg int, text string) {
	sc.ms = Scan(text, sc.ms[:0])
	for _, m := range sc.ms {
		sc.hits = append(sc.hits, hit{Match: m, field: field, msg: msg, text: text[m.ByteStart:m.ByteEnd]})
	}
}

// Detect scans every request message and the response. It returns at most one
// finding, whose spans point at every match.
func (d *Detector) Detect(ctx context.Context, in *events.Interaction) ([]events.Finding, error) {
	if in == nil {
		return nil, nil
	}
	sc := scratchPool.Get().(*scratch)
	defer func() {
		if cap(sc.hits) <= maxPooledHits {
			sc.hits, sc.ms = sc.hits[:0], sc.ms[:0]
			scratchPool.Put(sc)
		}
	}()
	sc.hits = sc.hits[:0]
	for i := range in.Request.Messages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sc.collect("prompt", i, in.Request.Messages[i].Content)
	}
	nPrompt := len(sc.hits)
	sc.collect("response", 0, in.Response.Content)
	if len(sc.hits) == 0 {
		return nil, nil
	}
	f, ok := d.finding(sc.hits[:nPrompt], sc.hits[nPrompt:])
	if !ok {
		return nil, nil
	}
	return []events.Finding{f}, nil
}

// kindInfo describes one kind for scoring and explanations.
type kindInfo struct {
	kind, singular, plural string
	// sensitive identifiers (card, IBAN, national ids) score higher.
	sensitive bool
	// weak kinds (names, addresses) are only evidence next to other PII; alone
	// they score low.
	weak bool
}

// kinds in explanation order.
var kinds = [...]kindInfo{
	{KindEmail, "an e-mail address", " e-mail addresses", false, false},
	{KindPhone, "a phone number", " phone numbers", false, false},
	{KindCard, "a payment card number", " payment card numbers", true, false},
	{KindIBAN, "an IBAN", " IBANs", true, false},
	{KindSSN, "a social security number", " social security numbers", true, false},
	{KindCNID, "a resident identity number", " resident identity numbers", true, false},
	{KindPassport, "a passport number", " passport numbers", true, false},
	{KindIP, "an IP address", " IP addresses", false, false},
	{KindAddress, "a street address", " street addresses", false, true},
	{KindPerson, "a person's name", " person names", false, true},
}

const nKinds = len(kinds)

func kindIndex(k string) int {
	for i := range kinds {
		if kinds[i].kind == k {
			return i
		}
	}
	return 0
}

// counts is a number of matches per kind.
type counts [nKinds]int

func (c *counts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c *counts) any(pred func(kindInfo) bool) bool {
	for i, v := range c {
		if v > 0 && pred(kinds[i]) {
			return true
		}
	}
	return false
}

func sensitive(k kindInfo) bool { return k.sensitive }
func strong(k kindInfo) bool    { return !k.weak }

// Scores of weak kinds (names, addresses).
const (
	scoreLeakPersonAddress = 0.7  // a name and an address appear in the response only
	scoreWeak              = 0.35 // only names or addresses
)

// finding scores the hits and builds the finding; ok is false below the threshold.
func (d *Detector) finding(prompt, response []hit) (events.Finding, bool) {
	var inPrompt, leaked, echoed counts
	for i := range prompt {
		inPrompt[kindIndex(prompt[i].Kind)]++
	}
	// Names in an answer are everyday text ("Marie Curie discovered ..."); they
	// count only when the answer also holds other personal data.
	respStrong := false
	for i := range response {
		if response[i].Kind != KindPerson {
			respStrong = true
			break
		}
	}
	kept := response[:0:0]
	for i := range response {
		h := &response[i]
		if h.Kind == KindPerson && !respStrong {
			continue
		}
		kept = append(kept, *h)
		k := kindIndex(h.Kind)
		if seenIn(h, prompt) {
			echoed[k]++
		} else {
			leaked[k]++
		}
	}
	response = kept
	if len(prompt)+len(response) == 0 {
		return events.Finding{}, false
	}
	nLeakedStrong := 0
	for i, v := range leaked {
		if !kinds[i].weak {
			nLeakedStrong += v
		}
	}
	var score float64
	var severity string
	switch {
	case nLeakedStrong > 0:
		score = scoreLeakOther
		if leaked.any(sensitive) {
			score = scoreLeakCard
		}
		score = min(1, score+scoreLeakExtra*float64(leaked.total()-1))
		severity = events.SeverityHigh
	case leaked[kindIndex(KindPerson)] > 0 && leaked[kindIndex(KindAddress)] > 0:
		score, severity = scoreLeakPersonAddress, events.SeverityMedium
	case inPrompt.any(sensitive) || echoed.any(sensitive) || len(prompt) >= promptManyPII && inPrompt.any(strong):
		score, severity = scorePromptMid, events.SeverityMedium
	case inPrompt.any(strong) || echoed.any(strong):
		score, severity = scorePromptLow, events.SeverityLow
	default:
		score, severity = scoreWeak, events.SeverityLow
	}
	if score < d.cfg.Threshold {
		return events.Finding{}, false
	}

	n := min(len(prompt)+len(response), d.cfg.MaxSpans)
	spans := make([]events.Span, 0, n)
	for _, hs := range [2][]hit{prompt, response} {
		for i := range hs {
			if len(spans) == n {
				break
			}
			h := &hs[i]
			spans = append(spans, events.Span{Field: h.field, Message: h.msg, Start: h.Start, End: h.End, Kind: h.Kind})
		}
	}
	return events.Finding{
		Detector:        Name,
		DetectorVersion: Version,
		Category:        Category,
		Severity:        severity,
		Score:           score,
		Threshold:       d.cfg.Threshold,
		Spans:           spans,
		Explanation:     explain(inPrompt, leaked, echoed),
	}, true
}

// explain says what was found where, e.g. "response contains an e-mail address
// and a phone number not present in the prompt (possible leak); prompt contains a
// payment card number".
func explain(inPrompt, leaked, echoed counts) string {
	var parts []string
	if s := listKinds(leaked); s != "" {
		parts = append(parts, "response contains "+s+" not present in the prompt (possible leak)")
	}
	if s := listKinds(inPrompt); s != "" {
		parts = append(parts, "prompt contains "+s)
	}
	if s := listKinds(echoed); s != "" {
		parts = append(parts, "response repeats "+s+" from the prompt")
	}
	return strings.Join(parts, "; ")
}

// listKinds renders counts as "an e-mail address, 2 phone numbers and a payment
// card number".
func listKinds(c counts) string {
	var items []string
	for k, n := range c {
		if n == 0 {
			continue
		}
		if n == 1 {
			items = append(items, kinds[k].singular)
		} else {
			items = append(items, strconv.Itoa(n)+kinds[k].plural)
		}
	}
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// seenIn reports whether the prompt holds the same PII as h.
func seenIn(h *hit, prompt []hit) bool {
	for i := range prompt {
		p := &prompt[i]
		if p.Kind == h.Kind && samePII(h.Kind, h.text, p.text) {
			return true
		}
	}
	return false
}

// minPhoneSuffix: two phone numbers are the same when one's digits end with the
// other's and the shorter has at least this many digits (+86 138... == 138...).
const minPhoneSuffix = 9

// samePII compares two matches of one kind by value, not by spelling.
func samePII(kind, a, b string) bool {
	switch kind {
	case KindEmail, KindPerson, KindAddress, KindPassport:
		return strings.EqualFold(a, b)
	case KindIBAN:
		return strings.EqualFold(strings.ReplaceAll(a, " ", ""), strings.ReplaceAll(b, " ", ""))
	}
	var da, db [maxDigits]byte
	x, y := digitsOf(a, da[:]), digitsOf(b, db[:])
	if kind != KindPhone {
		return string(x) == string(y)
	}
	if len(x) < len(y) {
		x, y = y, x
	}
	return string(x) == string(y) || (len(y) >= minPhoneSuffix && strings.HasSuffix(string(x), string(y)))
}

// digitsOf copies the ASCII digits of s into buf.
func digitsOf(s string, buf []byte) []byte {
	n := 0
	for i := 0; i < len(s) && n < len(buf); i++ {
		if isDigit(s[i]) {
			buf[n] = s[i]
			n++
		}
	}
	return buf[:n]
}
