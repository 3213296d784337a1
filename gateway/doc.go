// Package gateway is Stagegate's OpenAI-compatible front door.
//
// Requests come in over HTTP from any OpenAI client (POST /v1/chat/completions,
// GET /v1/models) with a bearer API key. Each request goes through named steps —
// authenticate → decode → decide (OPA policy over signals extracted from the
// prompt) → assign (candidate or baseline, sticky per user) → proxy or stream to the
// upstream model → answer → publish — and goes out twice: the answer to the client
// (server-sent events relayed chunk by chunk as they arrive) and, asynchronously, the
// whole interaction to the events publisher, which never blocks the answer.
//
// The models it calls come from Deps.Upstreams at start and from SetUpstream and
// RemoveUpstream while it serves (models registered at run time); requests read
// that table with one atomic load.
//
// Errors leave through one edge, Error(status, err), as OpenAI-shaped JSON.
package gateway
