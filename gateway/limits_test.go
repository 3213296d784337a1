package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/gateway"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/policies"
)

// limitRig is a gateway with a fake clock, the given trial limits, and an
// upstream whose streams stay open until the test releases them.
type limitRig struct {
	srv     *httptest.Server
	gw      *gateway.Gateway
	rec     *recorder
	clk     *clock.Fake
	release chan struct{}
	once    sync.Once
}

// releaseStreams lets the upstream's open streams finish.
func (r *limitRig) releaseStreams() { r.once.Do(func() { close(r.release) }) }

func newLimitRig(t *testing.T, limits gateway.Limits) *limitRig {
	t.Helper()
	r := &limitRig{clk: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), release: make(chan struct{}), rec: &recorder{}}
	t.Cleanup(r.releaseStreams)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Stream bool }
		_ = json.NewDecoder(req.Body).Decode(&body)
		if !body.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hel\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.release:
		case <-req.Context().Done():
			return
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	sub, _ := fs.Sub(policies.Builtin(), "rego/demo")
	eng, err := policies.New(context.Background(), policies.Config{FS: sub})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := policies.NewExtractor(nil)
	keys, _ := gateway.NewKeys(map[string]gateway.Principal{
		gateway.HashKey(pilotKey):   {KeyID: "k1", Trial: "demo", Tenant: "acme"},
		gateway.HashKey("sg-other"): {KeyID: "k2", Trial: "demo", Tenant: "acme"},
	})
	r.gw, err = gateway.New(gateway.Config{}, gateway.Deps{
		Keys:      keys,
		Trials:    map[string]*gateway.Trial{"demo": {ID: "demo", LogicalModel: "demo", Decider: eng, Extractor: ext, Limits: limits}},
		Upstreams: map[string]*gateway.Upstream{"cand": {Name: "cand", BaseURL: up.URL + "/v1"}, "base": {Name: "base", BaseURL: up.URL + "/v1"}},
		Assigner:  fixedAssigner{route: "candidate"}, Publisher: r.rec, Clock: r.clk,
		Pseudonymize: func(tenant, user string) string { return "p_" + user },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(r.gw)
	t.Cleanup(r.srv.Close)
	return r
}

func chatBody(user string, stream bool) string {
	return fmt.Sprintf(`{"model":"demo","user":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, user, stream)
}

// check429 asserts an OpenAI-shaped 429 with the code and a Retry-After.
func check429(t *testing.T, resp *http.Response, body, code, retryAfter string) {
	t.Helper()
	var e struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	if resp.StatusCode != http.StatusTooManyRequests || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != code || e.Error.Type != "requests" || e.Error.Message == "" {
		t.Fatalf("want 429 %s, got %d %s", code, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
}

func TestKeyRateLimitIsATokenBucket(t *testing.T) {
	r := newLimitRig(t, gateway.Limits{KeyRate: 0.5, KeyBurst: 2})
	for i := range 2 {
		if resp, b := post(t, r.srv.URL, pilotKey, chatBody("ann", false)); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := post(t, r.srv.URL, pilotKey, chatBody("bob", false)) // another user, same key
	check429(t, resp, b, "rate_limit_exceeded", "2")
	// Another key has its own bucket.
	if resp, b := post(t, r.srv.URL, "sg-other", chatBody("ann", false)); resp.StatusCode != 200 {
		t.Fatalf("other key: %d %s", resp.StatusCode, b)
	}
	r.clk.Advance(2 * time.Second) // one request's worth refills
	if resp, b := post(t, r.srv.URL, pilotKey, chatBody("ann", false)); resp.StatusCode != 200 {
		t.Fatalf("after the refill: %d %s", resp.StatusCode, b)
	}
	resp, b = post(t, r.srv.URL, pilotKey, chatBody("ann", false))
	check429(t, resp, b, "rate_limit_exceeded", "2")
	if st := r.gw.LimitStats(); st.RateLimited != 2 || st.ConcurrentCapped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A refused request is not an interaction: 4 answered, 4 recorded.
	recorded(t, r.rec, 4)
}

func recorded(t *testing.T, rec *recorder, n int) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != n {
		t.Fatalf("%d interactions recorded, want %d", len(rec.got), n)
	}
}

func TestUserRateLimitCountsPerUser(t *testing.T) {
	r := newLimitRig(t, gateway.Limits{UserRate: 1})
	if resp, b := post(t, r.srv.URL, pilotKey, chatBody("ann", false)); resp.StatusCode != 200 {
		t.Fatalf("first: %d %s", resp.StatusCode, b)
	}
	resp, b := post(t, r.srv.URL, "sg-other", chatBody("ann", false)) // same user through another key
	check429(t, resp, b, "rate_limit_exceeded", "1")
	if resp, b := post(t, r.srv.URL, pilotKey, chatBody("bob", false)); resp.StatusCode != 200 {
		t.Fatalf("another user: %d %s", resp.StatusCode, b)
	}
}

// openStream starts a streaming request and returns once its first chunk
// arrived, so it is admitted and in flight; done reports its end.
func openStream(t *testing.T, url, key, user string) (done chan string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody(user, true)))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data:") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	done = make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		var last string
		for {
			line, err := br.ReadString('\n')
			if strings.HasPrefix(line, "data:") {
				last = strings.TrimSpace(line)
			}
			if err != nil {
				done <- last
				return
			}
		}
	}()
	return done
}

func TestConcurrencyCapsHoldUntilTheStreamEnds(t *testing.T) {
	r := newLimitRig(t, gateway.Limits{UserConcurrent: 1, KeyConcurrent: 2})
	first := openStream(t, r.srv.URL, pilotKey, "ann")

	resp, b := post(t, r.srv.URL, pilotKey, chatBody("ann", false))
	check429(t, resp, b, "concurrency_limit_exceeded", "1")
	second := openStream(t, r.srv.URL, pilotKey, "bob") // the key's second slot
	resp, b = post(t, r.srv.URL, pilotKey, chatBody("cy", false))
	check429(t, resp, b, "concurrency_limit_exceeded", "1")

	r.releaseStreams()
	for _, d := range []chan string{first, second} {
		select {
		case last := <-d:
			if last != "data: [DONE]" {
				t.Fatalf("stream ended with %q", last)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stream did not end")
		}
	}
	// The slots are free again once the handler has returned.
	testutil.WaitFor(t, 5*time.Second, "a request of ann after her stream ended", func() bool {
		resp, _ := post(t, r.srv.URL, pilotKey, chatBody("ann", false))
		return resp.StatusCode == 200
	})
	if st := r.gw.LimitStats(); st.ConcurrentCapped < 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := (gateway.Limits{KeyRate: -1, UserBurst: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "rates") || !strings.Contains(err.Error(), "bursts") {
		t.Fatalf("validate: %v", err)
	}
}
