package gateway_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/policies"
)

// sseTransport answers every upstream call with body as an event stream, so a
// fuzz input is exactly what a model sent.
type sseTransport struct{ body []byte }

func (s sseTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bytes.NewReader(s.body)), Request: r}, nil
}

// FuzzStreamRelay feeds arbitrary upstream event streams through the gateway's
// SSE relay and the stream recorder: no panic, no hang, and the client's stream
// either is the model's (recorded ok) or ends with the documented error event
// (recorded partial).
func FuzzStreamRelay(f *testing.F) {
	f.Add([]byte("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"cut\"}}]}\n\n"))
	f.Add([]byte(": keep-alive\n\nevent: ping\ndata:\n\ndata:[DONE]"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"\\ud800\"},\"finish_reason\":\"length\"}],\"usage\":{\"completion_tokens\":-1}}\r\n\r\n"))
	f.Add([]byte("data: " + strings.Repeat("x", 40<<10) + "\n\ndata: [DONE]\n\n"))
	f.Add([]byte{})

	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, err := policies.New(context.Background(), policies.Config{FS: sub})
	if err != nil {
		f.Fatal(err)
	}
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{gateway.HashKey(pilotKey): {KeyID: "k1", Trial: "demo", Tenant: "acme"}})
	trials := map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext}}
	req := `{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}`

	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &recorder{}
		g, err := gateway.New(gateway.Config{UpstreamTimeout: 5 * time.Second, StreamKeepAlive: -1}, gateway.Deps{
			Keys: keys, Trials: trials,
			Upstreams: map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: "http://model.invalid/v1"}, "base": {Name: "base", BaseURL: "http://model.invalid/v1"}},
			Assigner:  fixedAssigner{route: "candidate"}, Publisher: rec, Transport: sseTransport{body: body},
			Pseudonymize: func(tenant, user string) string { return "p_" + user },
		})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(req))
		r.Header.Set("Authorization", "Bearer "+pilotKey)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		in := rec.last(t)
		out := w.Body.Bytes()
		broken := bytes.HasSuffix(out, []byte(`"code":"upstream_stream_broken"}}`+"\n\n"))
		switch {
		case in.Status == events.StatusOK && !broken:
		case in.Status == events.StatusPartial && broken:
		default:
			t.Fatalf("recorded %s, client stream broken=%v: %q", in.Status, broken, out)
		}
		if !bytes.HasPrefix(out, body[:min(len(body), 16)]) && len(body) > 0 && !broken {
			t.Fatalf("the client did not get the model's stream: %q", out)
		}
	})
}
