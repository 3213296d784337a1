// Package offline runs the risk detectors over recorded text, outside the
// sandbox: it is the engine of `stagegate scan` and of `make eval`.
//
// Data comes in as JSON lines, one object per line with "prompt", "response"
// and an optional "id" (other fields are ignored), from files or standard
// input. Each line becomes an events.Interaction with one user message (the
// prompt) and the response, and every detector runs on it. Data goes out as one
// JSON line per good input line, in input order:
//
//	{"id": ..., "findings": [{"detector", "category", "severity", "score",
//	  "spans": [{"field": "prompt"|"response", "start", "end", "kind"}],
//	  "explanation"}]}
//
// Span offsets are Unicode code points of the field's text. A bad line (not
// JSON, too long, wrong field types) is reported with its file and line number
// and skipped; Run goes on and returns ErrBadLines at the end.
package offline
