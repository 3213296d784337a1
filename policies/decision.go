package policies

import (
	"fmt"
	"math"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Values of Decision.Route and Obligations.LogLevel the contract allows.
const (
	RouteAny       = ""
	RouteCandidate = "candidate"
	RouteBaseline  = "baseline"

	LogLevelDefault = ""
	LogLevelDebug   = "debug"
	LogLevelInfo    = "info"
	LogLevelWarn    = "warn"
	LogLevelError   = "error"
)

// maxObligationTokens bounds obligations.max_tokens: a number above it is a
// policy bug, not a cap.
const maxObligationTokens = 1 << 24

// shapeError reports a decision that does not match the contract.
func shapeError(at, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrDecisionShape, at, fmt.Sprintf(format, args...))
}

// decodeDecision maps the policy's result strictly onto Decision: "allow" is
// required, every other field is optional with the documented default (fail_mode
// "closed"), an unknown key or a value of the wrong type or range is an
// ErrDecisionShape. Reasons may be an array or a set (a partial rule); a set is
// taken in its sorted order.
func decodeDecision(v ast.Value) (Decision, error) {
	d := Decision{Reasons: []Reason{}, FailMode: FailClosed}
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, shapeError("decision", "got %s, want an object", ast.ValueName(v))
	}
	haveAllow := false
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			return shapeError("decision", "key %v is not a string", k)
		}
		var err error
		switch key {
		case "allow":
			haveAllow = true
			d.Allow, err = decodeBool("decision.allow", val.Value)
		case "reasons":
			d.Reasons, err = decodeReasons(val.Value)
		case "route":
			d.Route, err = decodeString("decision.route", val.Value)
			if err == nil && d.Route != RouteAny && d.Route != RouteCandidate && d.Route != RouteBaseline {
				err = shapeError("decision.route", "%q is not one of \"\", %q, %q", d.Route, RouteCandidate, RouteBaseline)
			}
		case "obligations":
			d.Obligations, err = decodeObligations(val.Value)
		case "fail_mode":
			d.FailMode, err = decodeString("decision.fail_mode", val.Value)
			if err == nil && d.FailMode != FailOpen && d.FailMode != FailClosed {
				err = shapeError("decision.fail_mode", "%q is not %q or %q", d.FailMode, FailOpen, FailClosed)
			}
		default:
			err = shapeError("decision", "unknown key %q", string(key))
		}
		return err
	})
	if err != nil {
		return Decision{}, err
	}
	if !haveAllow {
		return Decision{}, shapeError("decision", "missing required key \"allow\"")
	}
	return d, nil
}

func decodeReasons(v ast.Value) ([]Reason, error) {
	var elems []*ast.Term
	switch x := v.(type) {
	case *ast.Array:
		if x.Len() == 0 {
			return []Reason{}, nil
		}
		elems = make([]*ast.Term, x.Len())
		for i := range elems {
			elems[i] = x.Elem(i)
		}
	case ast.Set:
		if x.Len() == 0 {
			return []Reason{}, nil
		}
		sorted := x.Sorted()
		elems = make([]*ast.Term, sorted.Len())
		for i := range elems {
			elems[i] = sorted.Elem(i)
		}
	default:
		return nil, shapeError("decision.reasons", "got %s, want an array", ast.ValueName(v))
	}
	reasons := make([]Reason, len(elems))
	for i, t := range elems {
		at := fmt.Sprintf("decision.reasons[%d]", i)
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return nil, shapeError(at, "got %s, want an object", ast.ValueName(t.Value))
		}
		haveCode := false
		err := obj.Iter(func(k, val *ast.Term) error {
			var err error
			switch k.Value {
			case ast.String("code"):
				haveCode = true
				reasons[i].Code, err = decodeString(at+".code", val.Value)
				if err == nil && reasons[i].Code == "" {
					err = shapeError(at+".code", "must not be empty")
				}
			case ast.String("message"):
				reasons[i].Message, err = decodeString(at+".message", val.Value)
			default:
				err = shapeError(at, "unknown key %v", k)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !haveCode {
			return nil, shapeError(at, "missing required key \"code\"")
		}
	}
	return reasons, nil
}

func decodeObligations(v ast.Value) (Obligations, error) {
	var o Obligations
	obj, ok := v.(ast.Object)
	if !ok {
		return o, shapeError("decision.obligations", "got %s, want an object", ast.ValueName(v))
	}
	err := obj.Iter(func(k, val *ast.Term) error {
		var err error
		switch k.Value {
		case ast.String("redact_pii_in_storage"):
			o.RedactPIIInStorage, err = decodeBool("decision.obligations.redact_pii_in_storage", val.Value)
		case ast.String("max_tokens"):
			o.MaxTokens, err = decodeCount("decision.obligations.max_tokens", val.Value, maxObligationTokens)
		case ast.String("notice"):
			o.Notice, err = decodeString("decision.obligations.notice", val.Value)
		case ast.String("log_level"):
			o.LogLevel, err = decodeString("decision.obligations.log_level", val.Value)
			if err == nil {
				switch o.LogLevel {
				case LogLevelDefault, LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError:
				default:
					err = shapeError("decision.obligations.log_level", "%q is not one of \"\", debug, info, warn, error", o.LogLevel)
				}
			}
		default:
			err = shapeError("decision.obligations", "unknown key %v", k)
		}
		return err
	})
	if err != nil {
		return Obligations{}, err
	}
	return o, nil
}

func decodeBool(at string, v ast.Value) (bool, error) {
	b, ok := v.(ast.Boolean)
	if !ok {
		return false, shapeError(at, "got %s, want a boolean", ast.ValueName(v))
	}
	return bool(b), nil
}

func decodeString(at string, v ast.Value) (string, error) {
	s, ok := v.(ast.String)
	if !ok {
		return "", shapeError(at, "got %s, want a string", ast.ValueName(v))
	}
	return string(s), nil
}

// decodeCount accepts an integer in 0..limit (512 and 512.0 alike).
func decodeCount(at string, v ast.Value, limit int64) (int, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, shapeError(at, "got %s, want an integer", ast.ValueName(v))
	}
	i, ok := n.Int64()
	if !ok {
		f, fok := n.Float64()
		if !fok || f != math.Trunc(f) || math.Abs(f) > float64(limit) {
			return 0, shapeError(at, "%s is not an integer in 0..%d", n, limit)
		}
		i = int64(f)
	}
	if i < 0 || i > limit {
		return 0, shapeError(at, "%s is not an integer in 0..%d", n, limit)
	}
	return int(i), nil
}
