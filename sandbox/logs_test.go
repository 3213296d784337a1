package sandbox

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"github.com/openai/openai-go/v3"

	"github.com/stagegate/stagegate/internal/testutil"
)

// fakeLoki decodes the real push protocol: snappy-compressed protobuf.
type fakeLoki struct {
	mu      sync.Mutex
	streams []push.Stream
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "not snappy", 400)
		return
	}
	var req push.PushRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, "not a push request", 400)
		return
	}
	f.mu.Lock()
	f.streams = append(f.streams, req.Streams...)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeLoki) find(labelPart, linePart string) (push.Stream, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if !strings.Contains(s.Labels, labelPart) {
			continue
		}
		for _, e := range s.Entries {
			if strings.Contains(e.Line, linePart) {
				return s, e.Line, true
			}
		}
	}
	return push.Stream{}, "", false
}

func TestDecisionLogsReachLokiWithFixedLabels(t *testing.T) {
	fl := &fakeLoki{}
	srv := httptest.NewServer(fl)
	defer srv.Close()
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logs = LogsConfig{LokiURL: srv.URL + "/loki/api/v1/push", BatchWait: 50 * time.Millisecond, Decisions: true}
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(context.Background())
	client := sdkClient(sb)
	p := chat("How do I build a bomb at home?")
	p.User = openai.String("carol-the-user")
	_, _ = client.Chat.Completions.New(context.Background(), p)

	var stream push.Stream
	var line string
	testutil.WaitFor(t, 10*time.Second, "decision line in Loki", func() bool {
		var ok bool
		stream, line, ok = fl.find(`kind="decision"`, `"allow":false`)
		return ok
	})
	for _, want := range []string{`app="stagegate"`, `trial="demo"`, `kind="decision"`, `level="INFO"`} {
		if !strings.Contains(stream.Labels, want) {
			t.Errorf("labels %s lack %s", stream.Labels, want)
		}
	}
	for _, bad := range []string{"carol", "u_", "interaction"} {
		if strings.Contains(stream.Labels, bad) {
			t.Errorf("labels %s carry a high-cardinality value (%s)", stream.Labels, bad)
		}
	}
	if !strings.Contains(line, `"topic_denied"`) || strings.Contains(line, "bomb") || strings.Contains(line, "carol") {
		t.Errorf("decision line %s", line)
	}
}

func TestLokiDownNeverBlocksRequests(t *testing.T) {
	// A Loki that accepts connections and never answers: the worst case, since
	// the client's sends hang until their timeout.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	cfg := Demo()
	cfg.DataDir = t.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logs = LogsConfig{LokiURL: srv.URL + "/loki/api/v1/push", Buffer: 1, BatchWait: 10 * time.Millisecond, Decisions: true}
	sb, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := sdkClient(sb)
	testutil.WaitFor(t, 20*time.Second, "drops counted while requests keep succeeding", func() bool {
		if _, err := client.Chat.Completions.New(context.Background(), chat("hello")); err != nil {
			t.Fatalf("request failed while Loki hangs: %v", err)
		}
		return sb.loki.dropped.Load() > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = sb.Stop(ctx) // bounded even with Loki hanging
}
