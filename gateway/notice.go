package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The disclosure notice obligation: the policy may require that users are told,
// in the answer itself, that they talk to a model under trial. The notice leads
// the answer and is separated from it by a blank line; monitors see it too,
// because they see what the user saw.

// noticeSeparator follows the notice.
const noticeSeparator = "\n\n"

// withNotice prepends notice to the first choice's message content of a
// chat.completion body. A body it cannot read is returned unchanged, with an error.
func withNotice(body []byte, notice string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return body, fmt.Errorf("add notice: %w", err)
	}
	var choices []map[string]json.RawMessage
	if err := json.Unmarshal(doc["choices"], &choices); err != nil || len(choices) == 0 {
		return body, fmt.Errorf("add notice: no choices")
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(choices[0]["message"], &msg); err != nil {
		return body, fmt.Errorf("add notice: no message")
	}
	var content string
	if c, ok := msg["content"]; ok && !isNull(c) {
		if err := json.Unmarshal(c, &content); err != nil {
			return body, fmt.Errorf("add notice: content is not text")
		}
	}
	msg["content"] = mustJSON(notice + noticeSeparator + content)
	choices[0]["message"] = mustMarshal(msg)
	doc["choices"] = mustMarshal(choices)
	return json.Marshal(doc)
}

// noticeChunk is the SSE event that carries the notice ahead of the model's first
// chunk, with that chunk's id, created time and model so clients and SDK
// accumulators treat it as part of the same completion.
func noticeChunk(firstData []byte, notice string) []byte {
	var head struct {
		ID      string          `json:"id"`
		Created json.RawMessage `json:"created"`
		Model   string          `json:"model"`
	}
	_ = json.Unmarshal(firstData, &head)
	if len(head.Created) == 0 {
		head.Created = json.RawMessage("0")
	}
	chunk := map[string]any{
		"id": head.ID, "object": "chat.completion.chunk", "created": head.Created, "model": head.Model,
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": notice + noticeSeparator}, "finish_reason": nil}},
	}
	b, _ := json.Marshal(chunk)
	var out bytes.Buffer
	out.WriteString("data: ")
	out.Write(b)
	out.WriteString("\n\n")
	return out.Bytes()
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with values decoded from JSON
	}
	return b
}
