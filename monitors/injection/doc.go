// Package injection is the prompt-injection detector of the risk monitors.
//
// Data comes in as one events.Interaction from the monitors runner (or from
// `stagegate scan`). Every request message except the system prompt is read, and
// the response too (a model that was hijacked often repeats the payload):
// instructions that try to override or reveal the system or developer prompt,
// in English and Chinese, whether typed by the user or hidden in a pasted
// document, e-mail, web page or tool output; and encoded payloads — base64 and
// hex blobs that decode to such instructions, invisible characters (zero-width,
// Unicode tag characters, bidirectional controls). Matching uses the lexicon
// package: phrase patterns with small gaps, never a copy of a known attack
// string. Text that discusses injection (a security lesson, a quoted example)
// scores lower.
//
// Data goes out as at most one events.Finding of category "prompt_injection"
// with code-point spans on the evidence.
package injection
