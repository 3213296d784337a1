// Package policies decides, per request, what a trial's regulator allows: it
// evaluates the trial's Rego policy with OPA (embedded as a Go library) and turns
// the prompt into the structured signals the policy reads.
//
// Data comes in as policy files (an fs.FS of *.rego modules and *.json data: a
// folder on disk via LoadDir, or the policies compiled into the binary via
// Builtin) and, per request, as an Input built by the gateway; the prompt text
// itself reaches only the Extractor, which reduces it to Signals (PII types,
// trial topics, injection score, language). Data goes out as a typed Decision
// (allow, reasons, route, obligations, fail mode), stamped with the policy
// revision that made it.
//
// New parses, compiles and prepares the policy once; Decide is then a pure,
// concurrency-safe function of (revision, input). The contract a regulator
// writes against is README.md with schema/input.v1.json and
// schema/decision.v1.json, not the Go types; the demo trial policy lives in
// rego/demo with its Rego tests.
package policies
