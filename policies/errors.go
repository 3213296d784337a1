package policies

import "errors"

// Sentinel errors of the policies package. Every error the package returns wraps
// exactly one of them; Code maps it to a stable, machine-readable code that the
// gateway may log, count and put into an OpenAI-style error body.
var (
	// ErrConfig (code "policy_config"): a Config or a topic list is invalid.
	ErrConfig = errors.New("invalid policy configuration")
	// ErrCompile (code "policy_compile"): the policy files cannot be loaded, parsed
	// or compiled. The message names file:line where OPA reports one.
	ErrCompile = errors.New("policy compile failed")
	// ErrUndefined (code "policy_undefined"): the decision rule produced no value
	// for this input (give every rule that feeds the decision a default).
	ErrUndefined = errors.New("policy decision undefined")
	// ErrDecisionShape (code "policy_decision_shape"): the decision is not an object
	// of the documented shape (schema/decision.v1.json). The engine never guesses.
	ErrDecisionShape = errors.New("policy decision has the wrong shape")
	// ErrEval (code "policy_eval"): evaluation failed (a conflict between rules, a
	// builtin error in strict mode, a cancelled context).
	ErrEval = errors.New("policy evaluation failed")
	// ErrInput (code "policy_input"): a recorded input document (ParseInput, a
	// corpus case) is not an input of the contract.
	ErrInput = errors.New("invalid policy input")
	// ErrCheck (code "policy_check"): a policy revision compiled but failed its
	// Rego unit tests or its decision corpus, so it is not put into service.
	ErrCheck = errors.New("policy check failed")
	// ErrBundle (code "policy_bundle"): a policy bundle could not be fetched or
	// read (HTTP error, timeout, not a bundle tarball).
	ErrBundle = errors.New("policy bundle unavailable")
)

// Stable error codes, one per sentinel.
const (
	CodeConfig        = "policy_config"
	CodeCompile       = "policy_compile"
	CodeUndefined     = "policy_undefined"
	CodeDecisionShape = "policy_decision_shape"
	CodeEval          = "policy_eval"
	CodeInput         = "policy_input"
	CodeCheck         = "policy_check"
	CodeBundle        = "policy_bundle"
)

var errorCodes = [...]struct {
	err  error
	code string
}{
	{ErrConfig, CodeConfig},
	{ErrCompile, CodeCompile},
	{ErrUndefined, CodeUndefined},
	{ErrDecisionShape, CodeDecisionShape},
	{ErrEval, CodeEval},
	{ErrInput, CodeInput},
	{ErrCheck, CodeCheck},
	{ErrBundle, CodeBundle},
}

// Code returns the stable code of the package sentinel that err wraps, or "" when
// err is nil or wraps none of them.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return ec.code
		}
	}
	return ""
}
