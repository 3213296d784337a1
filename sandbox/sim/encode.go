package sim

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Shared header values; net/http never mutates them.
var (
	hdrJSON        = []string{"application/json"}
	hdrEventStream = []string{"text/event-stream"}
	hdrNoCache     = []string{"no-cache"}
	hdrNoBuffering = []string{"no"}
)

const hexDigits = "0123456789abcdef"

// appendEscaped appends s JSON-escaped, without quotes. Invalid UTF-8 becomes U+FFFD.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendUsage appends the usage object.
func appendUsage(dst []byte, prompt, completion int) []byte {
	dst = append(dst, `"usage":{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(prompt), 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(completion), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(prompt+completion), 10)
	return append(dst, '}')
}

// Error types and codes of OpenAI-shaped error bodies.
const (
	typeInvalidRequest = "invalid_request_error"
	typeServer         = "server_error"

	codeInvalidJSON      = "invalid_json"
	codeInvalidDirective = "invalid_directive"
	codeBodyTooLarge     = "request_too_large"
	codeMethod           = "method_not_allowed"
	codeNotFound         = "not_found"
	codeModelNotFound    = "model_not_found"
	codeSimulated        = "simulated_error"
)

// appendError appends {"error":{"message","type","param","code"}}.
func appendError(dst []byte, typ, code, msg string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendQuoted(dst, msg)
	dst = append(dst, `,"type":`...)
	dst = appendQuoted(dst, typ)
	dst = append(dst, `,"param":null,"code":`...)
	dst = appendQuoted(dst, code)
	return append(dst, "}}\n"...)
}

// writeError answers with an OpenAI-shaped error.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	var arr [256]byte
	body := appendError(arr[:0], typ, code, msg)
	h := w.Header()
	h["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorType is the OpenAI error type of a status.
func errorType(status int) string {
	if status >= 500 {
		return typeServer
	}
	return typeInvalidRequest
}
