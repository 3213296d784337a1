package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Sentinel errors. Each maps to one HTTP status and a stable OpenAI-style code.
var (
	// ErrUnauthorized: no API key, or one the gateway does not know (401).
	ErrUnauthorized = errors.New("missing or unknown api key")
	// ErrMalformed: the body is not valid JSON or misses required fields (400).
	ErrMalformed = errors.New("malformed request")
	// ErrTooLarge: the body exceeds the configured cap (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrUnknownModel: the model is not one the caller's trial offers (404).
	ErrUnknownModel = errors.New("model not found")
	// ErrDenied: the trial's policy refused the request (403).
	ErrDenied = errors.New("denied by policy")
	// ErrPolicyUnavailable: the policy could not decide and the trial fails closed (503).
	ErrPolicyUnavailable = errors.New("policy unavailable")
	// ErrUpstream: the model failed (502).
	ErrUpstream = errors.New("upstream model failed")
	// ErrUpstreamTimeout: the model did not answer in time (504).
	ErrUpstreamTimeout = errors.New("upstream model timed out")
	// ErrRecordingUnavailable: the interaction could not be recorded (bus down and
	// spool full) and the trial fails closed (503).
	ErrRecordingUnavailable = errors.New("interaction recording unavailable")
	// ErrTrialNotActive: the request falls outside the trial's start and end (403).
	ErrTrialNotActive = errors.New("trial not active")
	// ErrNotParticipant: the key's tenant or the key itself is not among the
	// trial's participants (403).
	ErrNotParticipant = errors.New("not a participant of the trial")
	// ErrBodyTimeout: the request body did not arrive within BodyReadTimeout (408).
	ErrBodyTimeout = errors.New("request body timeout")
	// ErrMethod: wrong HTTP method (405).
	ErrMethod = errors.New("method not allowed")
	// ErrNotFound: no such endpoint (404).
	ErrNotFound = errors.New("not found")
)

// HTTPError is an error with the HTTP status and OpenAI error type and code the
// client receives.
type HTTPError struct {
	Status int
	Type   string // OpenAI error type: invalid_request_error, authentication_error, ...
	Code   string // stable machine-readable code
	Err    error
}

func (e *HTTPError) Error() string { return e.Err.Error() }
func (e *HTTPError) Unwrap() error { return e.Err }

// Error wraps err for the HTTP edge with status; the OpenAI type and code follow
// from the status and the sentinel err wraps.
func Error(status int, err error) *HTTPError {
	he := &HTTPError{Status: status, Err: err}
	switch {
	case errors.Is(err, ErrUnauthorized):
		he.Type, he.Code = "authentication_error", "invalid_api_key"
	case errors.Is(err, ErrDenied):
		he.Type, he.Code = "permission_error", "policy_denied"
	case errors.Is(err, ErrTrialNotActive):
		he.Type, he.Code = "permission_error", "trial_not_active"
	case errors.Is(err, ErrBodyTimeout):
		he.Type, he.Code = "invalid_request_error", "request_timeout"
	case errors.Is(err, ErrNotParticipant):
		he.Type, he.Code = "permission_error", "not_a_participant"
	case errors.Is(err, ErrUnknownModel):
		he.Type, he.Code = "invalid_request_error", "model_not_found"
	case errors.Is(err, ErrTooLarge):
		he.Type, he.Code = "invalid_request_error", "request_too_large"
	case errors.Is(err, ErrMalformed):
		he.Type, he.Code = "invalid_request_error", "invalid_request"
	case errors.Is(err, ErrUpstreamTimeout):
		he.Type, he.Code = "server_error", "upstream_timeout"
	case errors.Is(err, ErrUpstream):
		he.Type, he.Code = "server_error", "upstream_error"
	case errors.Is(err, ErrModelUnavailable):
		he.Type, he.Code = "server_error", "model_unavailable"
	case errors.Is(err, ErrRecordingUnavailable):
		he.Type, he.Code = "server_error", "recording_unavailable"
	case errors.Is(err, ErrPolicyUnavailable):
		he.Type, he.Code = "server_error", "policy_unavailable"
	case errors.Is(err, ErrMethod):
		he.Type, he.Code = "invalid_request_error", "method_not_allowed"
	case errors.Is(err, ErrNotFound):
		he.Type, he.Code = "invalid_request_error", "not_found"
	case status >= 500:
		he.Type, he.Code = "server_error", "internal_error"
	default:
		he.Type, he.Code = "invalid_request_error", "invalid_request"
	}
	return he
}

// withCode overrides the stable code, e.g. with the policy's reason code.
func (e *HTTPError) withCode(code string) *HTTPError {
	if code != "" {
		e.Code = code
	}
	return e
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// writeErrorEvent ends an event stream with an error in the shape OpenAI SDKs raise.
func writeErrorEvent(w http.ResponseWriter, he *HTTPError) {
	ev, _ := json.Marshal(errorBody{Error: errorDetail{Message: he.Error(), Type: he.Type, Code: he.Code}})
	_, _ = w.Write([]byte("data: "))
	_, _ = w.Write(ev)
	_, _ = w.Write([]byte("\n\n"))
	_ = http.NewResponseController(w).Flush()
}

// writeError sends err as an OpenAI error object. Errors that are not *HTTPError
// become 500 without their text, so internal detail never leaks.
func writeError(w http.ResponseWriter, err error) {
	var he *HTTPError
	if !errors.As(err, &he) {
		he = Error(http.StatusInternalServerError, errors.New("internal error"))
	}
	body, _ := json.Marshal(errorBody{Error: errorDetail{Message: he.Error(), Type: he.Type, Code: he.Code}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if he.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="stagegate"`)
	}
	w.WriteHeader(he.Status)
	_, _ = w.Write(body)
}
