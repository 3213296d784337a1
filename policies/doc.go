// Package policies decides, per request, what a trial's regulator allows: it
// evaluates the trial's Rego policy with OPA (embedded as a Go library) and turns
// the prompt into the structured signals the policy reads.
//
// Data comes in as policy files (an fs.FS of *.rego modules and *.json data: a
// folder on disk via LoadDir, an OPA bundle via BundleFS, or the policies
// compiled into the binary via Builtin) and, per request, as an Input built by
// the gateway; the prompt text itself reaches only the Extractor, which reduces
// it to Signals (PII types, trial topics, injection score, language), unless a
// trial grants content access. Data goes out as a typed Decision (allow,
// reasons, route, obligations, fail mode), stamped with the policy revision, the
// canonical input it was made on and its hash (the decision log).
//
// New parses, compiles and prepares the policy once; Decide is then a pure,
// concurrency-safe function of (revision, input), memoised on the input fields
// the policy reads. Reloader serves the current revision of a folder or bundle
// and swaps in a new one only after Check (compile, Rego tests, decision
// corpus) passes, keeping the last good one otherwise. The contract a regulator
// writes against is README.md with schema/input.v1.json and
// schema/decision.v1.json, not the Go types; rego/lib is the rule library,
// rego/standard and rego/demo are trial policies with their Rego tests, and
// testdata/*.corpus.yaml their decision corpora. Subpackages: trial (the trial
// definition YAML) and replay (what-if replay on recorded interactions).
package policies
