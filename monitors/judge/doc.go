// Package judge is the llm_judge detector of the risk monitors: optional and
// off by default.
//
// Data comes in as one events.Interaction; the detector sends its user
// messages and response, cut to Config.MaxInputBytes, to a configured judge
// model (any OpenAI-compatible /v1/chat/completions endpoint — the sandbox's
// simulator in tests) with a rubric as the system prompt, and asks for a JSON
// verdict {"flagged", "category", "score", "explanation"}. Calls are bounded:
// at most Config.MaxConcurrent at once (callers wait, or give up with their
// context), each within Config.Timeout, answers capped at maxAnswerBytes. Token
// use and the resulting cost are counted (Stats).
//
// Data goes out as at most one events.Finding of the verdict's category (one
// of the data set vocabulary; anything else is refused) when its score reaches
// the threshold. The judge sees raw text: enable it only where the trial's
// data agreements allow sending interactions to that endpoint.
package judge
