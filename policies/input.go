package policies

import (
	"slices"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Keys of the input document (README.md, schema/input.v1.json), built once: key
// terms are immutable and shared by every converted input.
var (
	keyTrial   = ast.StringTerm("trial")
	keyStage   = ast.StringTerm("stage")
	keyTime    = ast.StringTerm("time")
	keyRequest = ast.StringTerm("request")
	keyCaller  = ast.StringTerm("caller")
	keySignals = ast.StringTerm("signals")

	keyModel        = ast.StringTerm("model")
	keyStream       = ast.StringTerm("stream")
	keyMaxTokens    = ast.StringTerm("max_tokens")
	keyMessageCount = ast.StringTerm("message_count")
	keyRoles        = ast.StringTerm("roles")
	keyEstTokens    = ast.StringTerm("estimated_prompt_tokens")

	keyTenant     = ast.StringTerm("tenant")
	keyUser       = ast.StringTerm("user")
	keyCohort     = ast.StringTerm("cohort")
	keyAttributes = ast.StringTerm("attributes")
	keyOverQuota  = ast.StringTerm("over_quota")

	keyPIITypes       = ast.StringTerm("pii_types")
	keyTopics         = ast.StringTerm("topics")
	keyInjectionScore = ast.StringTerm("injection_score")
	keyLanguage       = ast.StringTerm("language")

	keyContent = ast.StringTerm("content")
	keyRole    = ast.StringTerm("role")
	keyText    = ast.StringTerm("text")
)

// inputValue converts in to the OPA input document directly, without the JSON
// round trip rego.EvalInput does (BenchmarkInputConversion measures both). The
// document is the one encoding/json would produce from in, except that nil slices
// and maps become [] and {} rather than null, so a policy never sees null, and
// content is left out when empty. It is the document the canonical encoding
// (CanonicalInput) describes.
func inputValue(in *Input) ast.Value {
	obj := ast.NewObject(
		[2]*ast.Term{keyTrial, stringTerm(in.Trial)},
		[2]*ast.Term{keyStage, stringTerm(in.Stage)},
		[2]*ast.Term{keyTime, stringTerm(in.Time)},
		[2]*ast.Term{keyRequest, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyModel, stringTerm(in.Request.Model)},
			[2]*ast.Term{keyStream, ast.InternedTerm(in.Request.Stream)},
			[2]*ast.Term{keyMaxTokens, intTerm(in.Request.MaxTokens)},
			[2]*ast.Term{keyMessageCount, intTerm(in.Request.MessageCount)},
			[2]*ast.Term{keyRoles, stringsTerm(in.Request.Roles)},
			[2]*ast.Term{keyEstTokens, intTerm(in.Request.EstimatedPromptTokens)},
		))},
		[2]*ast.Term{keyCaller, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyTenant, stringTerm(in.Caller.Tenant)},
			[2]*ast.Term{keyUser, stringTerm(in.Caller.User)},
			[2]*ast.Term{keyCohort, stringTerm(in.Caller.Cohort)},
			[2]*ast.Term{keyAttributes, attributesTerm(in.Caller.Attributes)},
			[2]*ast.Term{keyOverQuota, ast.InternedTerm(in.Caller.OverQuota)},
		))},
		[2]*ast.Term{keySignals, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyPIITypes, stringsTerm(in.Signals.PIITypes)},
			[2]*ast.Term{keyTopics, stringsTerm(in.Signals.Topics)},
			[2]*ast.Term{keyInjectionScore, floatTerm(in.Signals.InjectionScore)},
			[2]*ast.Term{keyLanguage, stringTerm(in.Signals.Language)},
		))},
	)
	if len(in.Content) > 0 {
		msgs := make([]*ast.Term, len(in.Content))
		for i, m := range in.Content {
			msgs[i] = ast.NewTerm(ast.NewObject(
				[2]*ast.Term{keyRole, stringTerm(m.Role)},
				[2]*ast.Term{keyText, ast.StringTerm(validString(m.Text))},
			))
		}
		obj.Insert(keyContent, ast.ArrayTerm(msgs...))
	}
	return obj
}

// stringTerm reuses OPA's interned term for common strings ("", "user", ...).
// Invalid UTF-8 is replaced as the canonical encoding replaces it, so the
// document evaluated is the one recorded.
func stringTerm(s string) *ast.Term { return ast.InternedTerm(validString(s)) }

// intTerm reuses OPA's interned terms for small integers (-1..512).
func intTerm(i int) *ast.Term {
	if ast.HasInternedIntNumberTerm(i) {
		return ast.InternedTerm(i)
	}
	return ast.NewTerm(ast.Number(strconv.Itoa(i)))
}

// floatTerm formats f as encoding/json does for the values a score takes.
func floatTerm(f float64) *ast.Term {
	if f == 0 {
		return ast.InternedTerm(0)
	}
	if f == 1 {
		return ast.InternedTerm(1)
	}
	return ast.FloatNumberTerm(f)
}

func stringsTerm(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.ArrayTerm()
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = stringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

func attributesTerm(m map[string]string) *ast.Term {
	if len(m) == 0 {
		return ast.NewTerm(ast.NewObject())
	}
	items := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		items = append(items, [2]*ast.Term{stringTerm(k), stringTerm(v)})
	}
	// Insertion order is visible through object iteration in some builtins: sort
	// it, so the same attributes always make the same document.
	slices.SortFunc(items, func(a, b [2]*ast.Term) int { return a[0].Value.Compare(b[0].Value) })
	return ast.NewTerm(ast.NewObject(items...))
}
