package pii

import "strings"

// Context windows around a candidate, in bytes.
const (
	contextBefore = 40
	contextAfter  = 20
)

// Context words, matched case-insensitively as prefixes of words in the window.
var (
	phoneWords = []string{"phone", "tel", "mobile", "cell", "fax", "call", "dial", "ring", "text", "sms",
		"whatsapp", "contact", "desk", "office", "number", "reach", "messag", "answer", "hotline", "landline",
		"电话", "手机", "联系", "号码", "致电", "来电"}
	cardWords = []string{"card", "visa", "master", "maestro", "amex", "debit", "credit", "卡"}
)

// hasContext reports whether one of words starts a word within the window
// around s[start:end].
func hasContext(s string, start, end int, words []string) bool {
	lo := max(0, start-contextBefore)
	hi := min(len(s), end+contextAfter)
	return windowHas(s[lo:start], words) || windowHas(s[end:hi], words)
}

// windowHas reports whether w contains one of words at a word start.
func windowHas(w string, words []string) bool {
	for i := 0; i < len(w); i++ {
		if i > 0 && isAlpha(w[i-1]) {
			continue
		}
		for _, word := range words {
			if len(w)-i >= len(word) && strings.EqualFold(w[i:i+len(word)], word) {
				return true
			}
		}
	}
	return false
}
