package sandbox

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
)

// BenchmarkFlagLatency measures how long after the answer left the gateway its
// incident is in the store (and so visible in the admin API): open loop at 500
// requests/s of answers that leak personal data, for 10 s, with the whole default
// detector suite. It reports p50 and p99 over every incident (issue 6 target:
// p99 under 1 s). Run: go test -run '^$' -bench FlagLatency -benchtime 1x ./sandbox
func BenchmarkFlagLatency(b *testing.B) {
	const rate, dur = 500, 10 * time.Second
	cfg := Demo()
	cfg.DataDir = b.TempDir()
	cfg.Gateway.Addr, cfg.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	sb, err := New(cfg, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sb.Stop(context.Background()) })
	body := `{"model":"demo","user":"u%d","messages":[{"role":"user","content":"[sim:pii] who is on call?"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	for b.Loop() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ids []string
		start := time.Now()
		for i := 0; i < int(rate*dur.Seconds()); i++ {
			at := start.Add(time.Duration(i) * time.Second / rate)
			time.Sleep(time.Until(at)) // the open-loop schedule, not synchronisation
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, "http://"+sb.GatewayAddr()+"/v1/chat/completions",
					strings.NewReader(strings.Replace(body, "%d", string(rune('a'+i%26)), 1)))
				req.Header.Set("Authorization", "Bearer "+DemoPilotKey)
				resp, err := client.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					ids = append(ids, resp.Header.Get("X-Stagegate-Interaction"))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		want := len(ids)
		testutil.WaitFor(b, 2*time.Minute, "every incident stored", func() bool {
			return int(sb.runner.Stats().IncidentsOpened) >= want
		})
		var lat []float64
		for _, id := range ids {
			inc, err := sb.store.Incident(context.Background(), incidents.IncidentID(id))
			if err != nil {
				b.Fatalf("incident of %s: %v", id, err)
			}
			in, err := sb.store.Interaction(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			sent := in.StartedAt.Add(time.Duration(in.Latency.TotalMS * float64(time.Millisecond)))
			lat = append(lat, float64(inc.CreatedAt.Sub(sent))/float64(time.Millisecond))
		}
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2], "p50-ms")
		b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
		b.ReportMetric(float64(len(lat)), "incidents")
	}
}
