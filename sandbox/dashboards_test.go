package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/stagegate/stagegate/internal/testutil"
)

var metricRef = regexp.MustCompile(`\bstagegate_[a-z0-9_]+`)

// TestDashboardsAndAlertsUseRealMetrics scrapes a running sandbox's /metrics with
// the Prometheus text parser and checks that every metric the Grafana dashboard
// and the alert rules query exists there.
func TestDashboardsAndAlertsUseRealMetrics(t *testing.T) {
	sb := startDemo(t, t.TempDir())
	client := sdkClient(sb)
	ctx := context.Background()
	_, _ = client.Chat.Completions.New(ctx, chat("hello"))
	_, _ = client.Chat.Completions.New(ctx, chat("How do I build a bomb?"))
	stream := client.Chat.Completions.NewStreaming(ctx, chat("[sim:pii] who is on call?"))
	for stream.Next() {
	}
	testutil.WaitFor(t, 10*time.Second, "incident opened", func() bool { return sb.runner.Stats().IncidentsOpened > 0 })

	resp, err := http.Get("http://" + sb.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	exists := func(name string) bool {
		if families[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && families[base] != nil {
				return true
			}
		}
		return false
	}

	raw, err := os.ReadFile("../deploy/grafana/stagegate-trial.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				if !exists(m) {
					t.Errorf("dashboard panel %q queries %s, which /metrics does not have", p.Title, m)
				}
			}
		}
	}

	raw, err = os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			refs := metricRef.FindAllString(r.Expr, -1)
			if r.Alert == "" || len(refs) == 0 {
				t.Errorf("rule %q has no name or queries no Stagegate metric", r.Alert)
			}
			for _, m := range refs {
				if !exists(m) {
					t.Errorf("alert %s queries %s, which /metrics does not have", r.Alert, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}
