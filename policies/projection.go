package policies

import (
	"crypto/sha256"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// projection is the part of the input a compiled policy can read: the memo keys
// on it, so two requests that differ only in fields the policy never looks at
// (the pseudonymous user, the prompt's size) share one memoised decision.
//
// It is found by static analysis of the compiled modules: every reference that
// starts at input is followed as far as its path is made of constant strings.
// Anything the analysis cannot pin down widens the projection (a reference to
// input as a whole, input[x] with a variable x, a bare input term), so it never
// leaves out a field the policy might read; TestMemoNeverChangesAResult checks
// memoised decisions against fresh ones.
type projection struct {
	mask uint32
	// attrKeys, when not nil, are the only caller.attributes keys read (sorted);
	// nil with fCallerAttributes in mask means the whole map.
	attrKeys []string
}

// all reports whether the projection is the whole input.
func (p *projection) all() bool { return p.mask == fAll && p.attrKeys == nil }

// fields names the projected fields, for Stats.
func (p *projection) fields() []string {
	var out []string
	for _, f := range fieldNames {
		if p.mask&f.bit == 0 {
			continue
		}
		if f.bit == fCallerAttributes && p.attrKeys != nil {
			for _, k := range p.attrKeys {
				out = append(out, f.name+"."+k)
			}
			continue
		}
		out = append(out, f.name)
	}
	return out
}

// keyBufs holds scratch buffers for projected memo keys.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// key is the memo key of in: the SHA-256 of the canonical encoding of the
// projected fields, or full (the hash of the whole input) when nothing is left out.
func (p *projection) key(in *Input, full [sha256.Size]byte) [sha256.Size]byte {
	if p.all() {
		return full
	}
	bp := keyBufs.Get().(*[]byte)
	b := appendInput((*bp)[:0], in, p.mask, p.attrKeys)
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*bp = b
		keyBufs.Put(bp)
	}
	return sum
}

// analyseInputReads computes the projection of the compiled modules.
func analyseInputReads(modules map[string]*ast.Module) *projection {
	a := &inputReads{attrs: map[string]bool{}}
	for _, m := range modules {
		a.walk(m)
		if a.mask == fAll && a.wholeAttrs {
			break
		}
	}
	p := &projection{mask: a.mask}
	if a.mask&fCallerAttributes != 0 && !a.wholeAttrs {
		p.attrKeys = make([]string, 0, len(a.attrs))
		for k := range a.attrs {
			p.attrKeys = append(p.attrKeys, k)
		}
		slices.Sort(p.attrKeys)
	}
	return p
}

type inputReads struct {
	mask       uint32
	wholeAttrs bool
	attrs      map[string]bool
}

func (a *inputReads) everything() {
	a.mask = fAll
	a.wholeAttrs = true
}

func (a *inputReads) walk(x any) {
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case ast.Ref:
			if v.HasPrefix(ast.InputRootRef) {
				a.ref(v)
				// Terms inside the path (input[x.y]) may read input too.
				for _, t := range v[1:] {
					vis.Walk(t)
				}
				return true
			}
		case ast.Var:
			// A bare input term outside a reference: the policy may hand the
			// whole document anywhere.
			if v.Equal(ast.InputRootDocument.Value) {
				a.everything()
			}
		}
		return false
	})
	vis.Walk(x)
}

// groups maps the second-level keys of each object of the input to field bits.
var groups = map[string]struct {
	all    uint32
	fields map[string]uint32
}{
	"trial":   {all: fTrial},
	"stage":   {all: fStage},
	"time":    {all: fTime},
	"content": {all: fContent},
	"request": {all: fRequest, fields: map[string]uint32{
		"model": fReqModel, "stream": fReqStream, "max_tokens": fReqMaxTokens,
		"message_count": fReqMessageCount, "roles": fReqRoles, "estimated_prompt_tokens": fReqEstTokens,
	}},
	"caller": {all: fCaller, fields: map[string]uint32{
		"tenant": fCallerTenant, "user": fCallerUser, "cohort": fCallerCohort,
		"attributes": fCallerAttributes, "over_quota": fCallerOverQuota,
	}},
	"signals": {all: fSignals, fields: map[string]uint32{
		"pii_types": fSigPIITypes, "topics": fSigTopics, "injection_score": fSigInjection, "language": fSigLanguage,
	}},
}

// ref records one reference that starts at input.
func (a *inputReads) ref(r ast.Ref) {
	if len(r) < 2 {
		a.everything()
		return
	}
	top, ok := r[1].Value.(ast.String)
	if !ok {
		a.everything()
		return
	}
	g, ok := groups[string(top)]
	if !ok {
		return // not a field of the input: always undefined, reads nothing
	}
	if g.fields == nil || len(r) < 3 {
		a.mask |= g.all
		if g.all&fCallerAttributes != 0 {
			a.wholeAttrs = true
		}
		return
	}
	second, ok := r[2].Value.(ast.String)
	if !ok {
		a.mask |= g.all
		if g.all&fCallerAttributes != 0 {
			a.wholeAttrs = true
		}
		return
	}
	bit, ok := g.fields[string(second)]
	if !ok {
		return
	}
	a.mask |= bit
	if bit != fCallerAttributes {
		return
	}
	if len(r) < 4 {
		a.wholeAttrs = true
		return
	}
	if k, ok := r[3].Value.(ast.String); ok {
		a.attrs[string(k)] = true
	} else {
		a.wholeAttrs = true
	}
}
