// Package sim is Stagegate's built-in model simulator: an OpenAI-compatible HTTP
// server that tests, demos and benchmarks use as the upstream model.
//
// Data comes in as OpenAI chat-completion requests (POST /v1/chat/completions,
// JSON, bounded by Config.MaxBodyBytes) and goes out as OpenAI-shaped answers:
// a chat.completion object, or a text/event-stream of chat.completion.chunk
// events ending in "data: [DONE]". GET /v1/models lists Config.Models, GET
// /v1/models/{id} returns one of them, and GET /healthz reports liveness.
//
// Answers are deterministic. Without a directive the answer is derived from the
// prompt (or is Config.FixedAnswer). Directives written in the last user message
// script the behaviour a test needs:
//
//	[sim:pii]          answer with an e-mail address, a +86 mobile number and a Luhn-valid card number
//	[sim:unsafe]       answer with confident, unsafe medical advice
//	[sim:slow=300ms]   wait before the first token (before the whole answer when not streaming)
//	[sim:gap=50ms]     wait between stream chunks
//	[sim:error=503]    answer with that HTTP status (400-599) and an OpenAI error body
//	[sim:tokens=N]     answer with exactly N tokens (1..100000), filler words after any content
//	[sim:cut=N]        streaming only: write N chunks, then drop the connection without [DONE]
//
// Several directives combine ("[sim:pii] [sim:gap=50ms]"). A malformed or unknown
// directive is answered with 400 and code "invalid_directive". A token is a word
// with its leading whitespace, so joining the streamed deltas reproduces the
// non-streamed content exactly; usage.completion_tokens is the number of content
// chunks and usage.prompt_tokens the number of words in all messages.
//
// Every wait (Config.Delay, slow, gap) ends when the request's context does, so a
// client that disconnects stops its stream.
package sim
