package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds on a decision corpus file.
const (
	// MaxCorpusBytes bounds one corpus file.
	MaxCorpusBytes = 4 << 20
	// MaxCorpusCases bounds the cases of one corpus file.
	MaxCorpusCases = 10000
	// CorpusSuffix ends the name of a corpus file inside a policy root.
	CorpusSuffix = ".corpus.yaml"
	// maxYAMLDepth bounds nesting (and alias chains) in a corpus file.
	maxYAMLDepth = 32
)

// CorpusCase is one entry of a decision corpus: an input and what the decision
// on it must be. A corpus file is YAML (see README.md, "Decision corpus"):
//
//	base:            # optional: input fields every case starts from
//	  trial: demo
//	cases:
//	  - name: weapons are refused
//	    input: {signals: {topics: [weapons]}}   # merged over base
//	    expect:
//	      allow: false
//	      reasons: [{code: topic_denied, message_contains: weapons}]
type CorpusCase struct {
	// File and Line locate the case for messages.
	File string
	Line int
	// Name says what the case shows.
	Name string
	// Input is base merged with the case's input (objects merged key by key,
	// everything else replaced).
	Input Input
	// Expect is what the decision must be; fields left out are not checked.
	Expect Expectation
}

// Expectation lists the decision fields a corpus case checks; nil is unchecked.
type Expectation struct {
	Allow *bool
	// Reasons, when not nil, must match the decision's reasons one for one, in
	// order; an empty list means no reasons.
	Reasons            []ExpectedReason
	Route              *string
	RedactPIIInStorage *bool
	MaxTokens          *int
	Notice             *string
	LogLevel           *string
	FailMode           *string
}

// ExpectedReason matches one reason: its code, and its message exactly or by a
// substring when given.
type ExpectedReason struct {
	Code            string
	Message         *string
	MessageContains string
}

// Where names the case in messages: file:line (name).
func (c *CorpusCase) Where() string { return fmt.Sprintf("%s:%d (%s)", c.File, c.Line, c.Name) }

// Mismatches compares d with the expectation and describes each difference; an
// empty result means the case passes.
func (c *CorpusCase) Mismatches(d Decision) []string {
	var out []string
	e := c.Expect
	if e.Allow != nil && d.Allow != *e.Allow {
		out = append(out, fmt.Sprintf("allow = %v, want %v", d.Allow, *e.Allow))
	}
	if e.Reasons != nil && !reasonsMatch(d.Reasons, e.Reasons) {
		out = append(out, fmt.Sprintf("reasons = %s, want %s", formatReasons(d.Reasons), formatExpected(e.Reasons)))
	}
	checkString := func(name, got string, want *string) {
		if want != nil && got != *want {
			out = append(out, fmt.Sprintf("%s = %q, want %q", name, got, *want))
		}
	}
	checkString("route", d.Route, e.Route)
	checkString("fail_mode", d.FailMode, e.FailMode)
	checkString("obligations.notice", d.Obligations.Notice, e.Notice)
	checkString("obligations.log_level", d.Obligations.LogLevel, e.LogLevel)
	if e.RedactPIIInStorage != nil && d.Obligations.RedactPIIInStorage != *e.RedactPIIInStorage {
		out = append(out, fmt.Sprintf("obligations.redact_pii_in_storage = %v, want %v", d.Obligations.RedactPIIInStorage, *e.RedactPIIInStorage))
	}
	if e.MaxTokens != nil && d.Obligations.MaxTokens != *e.MaxTokens {
		out = append(out, fmt.Sprintf("obligations.max_tokens = %d, want %d", d.Obligations.MaxTokens, *e.MaxTokens))
	}
	return out
}

func reasonsMatch(got []Reason, want []ExpectedReason) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		g := got[i]
		if g.Code != w.Code || w.Message != nil && g.Message != *w.Message ||
			w.MessageContains != "" && !strings.Contains(g.Message, w.MessageContains) {
			return false
		}
	}
	return true
}

func formatReasons(rs []Reason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s (%q)", r.Code, r.Message)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func formatExpected(rs []ExpectedReason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		switch {
		case r.Message != nil:
			parts[i] = fmt.Sprintf("%s (%q)", r.Code, *r.Message)
		case r.MessageContains != "":
			parts[i] = fmt.Sprintf("%s (containing %q)", r.Code, r.MessageContains)
		default:
			parts[i] = r.Code
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// LoadCorpus reads the corpus files named by paths from fsys.
func LoadCorpus(fsys fs.FS, paths ...string) ([]CorpusCase, error) {
	var (
		cases []CorpusCase
		errs  []error
	)
	for _, p := range paths {
		src, err := readCorpusFile(fsys, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs, err := ParseCorpus(p, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cases = append(cases, cs...)
	}
	return cases, errors.Join(errs...)
}

// corpusFiles lists the *.corpus.yaml files of a policy root (hidden files and
// folders skipped), in lexical order.
func corpusFiles(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), CorpusSuffix) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func readCorpusFile(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: corpus %s: %w", ErrInput, p, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxCorpusBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: corpus %s: %w", ErrInput, p, err)
	}
	if len(src) > MaxCorpusBytes {
		return nil, fmt.Errorf("%w: corpus %s: larger than %d bytes", ErrInput, p, MaxCorpusBytes)
	}
	return src, nil
}

// ParseCorpus parses one corpus file; name is used in messages. Every problem is
// reported at once, each as name:line: what, wrapped in ErrInput.
func ParseCorpus(name string, src []byte) ([]CorpusCase, error) {
	if len(src) > MaxCorpusBytes {
		return nil, fmt.Errorf("%w: corpus %s: larger than %d bytes", ErrInput, name, MaxCorpusBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%w: corpus %s: %w", ErrInput, name, err)
	}
	p := &corpusParser{name: name}
	if doc.Kind == 0 {
		return nil, fmt.Errorf("%w: corpus %s: empty file", ErrInput, name)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s:%d: a corpus is a mapping with base and cases", ErrInput, name, root.Line)
	}
	var (
		base      map[string]any
		baseOK    = true
		casesNode *yaml.Node
	)
	p.fields(root, "", map[string]func(*yaml.Node){
		"base": func(n *yaml.Node) {
			v, ok := p.object(n, "base")
			if ok {
				base = v
				raw, err := json.Marshal(v)
				if err == nil {
					_, err = ParseInput(raw)
				}
				if err != nil {
					p.fail(n, "base: "+inputProblem(err))
					ok = false
				}
			}
			baseOK = ok
		},
		"cases": func(n *yaml.Node) { casesNode = n },
	})
	var cases []CorpusCase
	switch {
	case casesNode == nil:
		p.fail(root, "cases: required")
	case casesNode.Kind != yaml.SequenceNode:
		p.fail(casesNode, "cases: want a list")
	case len(casesNode.Content) > MaxCorpusCases:
		p.fail(casesNode, fmt.Sprintf("cases: %d cases, at most %d", len(casesNode.Content), MaxCorpusCases))
	default:
		for i, cn := range casesNode.Content {
			if c, ok := p.parseCase(cn, i, base, baseOK); ok {
				cases = append(cases, c)
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInput, errors.Join(p.sorted()...))
	}
	return cases, nil
}

type corpusParser struct {
	name  string
	errs  []error
	lines []int // of errs, to report them in file order
}

func (p *corpusParser) fail(n *yaml.Node, msg string) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.name, n.Line, msg))
	p.lines = append(p.lines, n.Line)
}

// sorted returns the errors in file order.
func (p *corpusParser) sorted() []error {
	idx := make([]int, len(p.errs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return p.lines[a] - p.lines[b] })
	out := make([]error, len(idx))
	for i, j := range idx {
		out[i] = p.errs[j]
	}
	return out
}

// inputProblem is the message of a ParseInput error without the sentinel's text.
func inputProblem(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInput.Error()+": ")
}

// fields walks a mapping, calling the handler of each known key and reporting
// unknown and duplicate keys.
func (p *corpusParser) fields(n *yaml.Node, at string, handlers map[string]func(*yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		prefix := ""
		if at != "" {
			prefix = at + ": "
		}
		switch {
		case !ok:
			p.fail(k, fmt.Sprintf("%sunknown field %q (known: %s)", prefix, k.Value, strings.Join(slices.Sorted(maps.Keys(handlers)), ", ")))
		case seen[k.Value]:
			p.fail(k, fmt.Sprintf("%s%s: defined twice", prefix, k.Value))
		default:
			seen[k.Value] = true
			h(v)
		}
	}
}

func (p *corpusParser) parseCase(n *yaml.Node, i int, base map[string]any, baseOK bool) (CorpusCase, bool) {
	c := CorpusCase{File: p.name, Line: n.Line}
	at := fmt.Sprintf("cases[%d]", i)
	if n.Kind != yaml.MappingNode {
		p.fail(n, at+": want a mapping with name, input and expect")
		return c, false
	}
	before := len(p.errs)
	var input map[string]any
	haveExpect := false
	p.fields(n, at, map[string]func(*yaml.Node){
		"name": func(v *yaml.Node) { c.Name = p.str(v, at+".name") },
		"input": func(v *yaml.Node) {
			if obj, ok := p.object(v, at+".input"); ok {
				input = obj
			}
		},
		"expect": func(v *yaml.Node) {
			haveExpect = true
			c.Expect = p.expectation(v, at+".expect")
		},
	})
	if c.Name == "" {
		p.fail(n, at+".name: required")
	}
	if !haveExpect {
		p.fail(n, at+".expect: required")
	}
	if !baseOK {
		return c, false // reported once, at base
	}
	doc := mergeInput(base, input)
	raw, err := json.Marshal(doc)
	if err == nil {
		c.Input, err = ParseInput(raw)
	}
	if err != nil {
		p.fail(n, at+".input: "+inputProblem(err))
	}
	return c, len(p.errs) == before
}

func (p *corpusParser) expectation(n *yaml.Node, at string) Expectation {
	var e Expectation
	if n.Kind != yaml.MappingNode {
		p.fail(n, at+": want a mapping")
		return e
	}
	boolPtr := func(v *yaml.Node, field string) *bool {
		var b bool
		if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
			p.fail(v, fmt.Sprintf("%s.%s: want true or false", at, field))
			return nil
		}
		return &b
	}
	strPtr := func(v *yaml.Node, field string) *string {
		s := p.str(v, at+"."+field)
		return &s
	}
	p.fields(n, at, map[string]func(*yaml.Node){
		"allow":     func(v *yaml.Node) { e.Allow = boolPtr(v, "allow") },
		"route":     func(v *yaml.Node) { e.Route = strPtr(v, "route") },
		"fail_mode": func(v *yaml.Node) { e.FailMode = strPtr(v, "fail_mode") },
		"reasons": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.fail(v, at+".reasons: want a list")
				return
			}
			e.Reasons = []ExpectedReason{}
			for j, rn := range v.Content {
				rat := fmt.Sprintf("%s.reasons[%d]", at, j)
				if rn.Kind != yaml.MappingNode {
					p.fail(rn, rat+": want a mapping with code and message or message_contains")
					continue
				}
				var r ExpectedReason
				p.fields(rn, rat, map[string]func(*yaml.Node){
					"code":             func(v *yaml.Node) { r.Code = p.str(v, rat+".code") },
					"message":          func(v *yaml.Node) { s := p.str(v, rat+".message"); r.Message = &s },
					"message_contains": func(v *yaml.Node) { r.MessageContains = p.str(v, rat+".message_contains") },
				})
				if r.Code == "" {
					p.fail(rn, rat+".code: required")
				}
				e.Reasons = append(e.Reasons, r)
			}
		},
		"obligations": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				p.fail(v, at+".obligations: want a mapping")
				return
			}
			oat := at + ".obligations"
			p.fields(v, oat, map[string]func(*yaml.Node){
				"redact_pii_in_storage": func(v *yaml.Node) { e.RedactPIIInStorage = boolPtr(v, "obligations.redact_pii_in_storage") },
				"max_tokens": func(v *yaml.Node) {
					var n int
					if v.Kind != yaml.ScalarNode || v.Decode(&n) != nil {
						p.fail(v, oat+".max_tokens: want an integer")
						return
					}
					e.MaxTokens = &n
				},
				"notice":    func(v *yaml.Node) { e.Notice = strPtr(v, "obligations.notice") },
				"log_level": func(v *yaml.Node) { e.LogLevel = strPtr(v, "obligations.log_level") },
			})
		},
	})
	return e
}

func (p *corpusParser) str(n *yaml.Node, at string) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.fail(n, at+": want a string")
		return ""
	}
	return n.Value
}

// object converts a YAML mapping to a JSON-like value.
func (p *corpusParser) object(n *yaml.Node, at string) (map[string]any, bool) {
	v, err := yamlValue(n, 0)
	if err != nil {
		p.fail(n, at+": "+err.Error())
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.fail(n, at+": want a mapping")
		return nil, false
	}
	return obj, true
}

// yamlValue converts a node to the value JSON would hold: strings stay strings
// (timestamps included), integers and floats become numbers.
func yamlValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d", n.Line, maxYAMLDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias, depth+1)
	case yaml.MappingNode:
		obj := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be strings", k.Line)
			}
			if _, dup := obj[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q defined twice", k.Line, k.Value)
			}
			v, err := yamlValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			obj[k.Value] = v
		}
		return obj, nil
	case yaml.SequenceNode:
		arr := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			arr[i] = v
		}
		return arr, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if err != nil {
				var i int64
				if derr := n.Decode(&i); derr != nil {
					return nil, fmt.Errorf("line %d: %q is not a number JSON can hold", n.Line, n.Value)
				}
				return json.Number(strconv.FormatInt(i, 10)), nil
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// mergeInput deep-merges over onto base: objects key by key, anything else replaced.
func mergeInput(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	maps.Copy(out, base)
	for k, v := range over {
		bo, ok1 := out[k].(map[string]any)
		vo, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeInput(bo, vo)
			continue
		}
		out[k] = v
	}
	return out
}
