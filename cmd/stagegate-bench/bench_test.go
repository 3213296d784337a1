package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stagegate/stagegate/sandbox"
)

// TestMain lets the test binary stand in for the harness binary: the harness
// starts case (b) as `<self> proxy ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "proxy" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runProxy(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the harness for real in quick mode: every process, every
// case, every answer checked; the report has every case with zero errors and
// keeps what was written before it.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and measures for several seconds")
	}
	if raceEnabled {
		t.Skip("a timing run means nothing under the race detector")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	before := "# Benchmarks\n\nNotes written by hand.\n\n## History\n\n- an earlier entry\n"
	if err := os.WriteFile(out, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	o := quickOptions()
	o.Out, o.workDir, o.command, o.DecideCalls = out, t.TempDir(), "go test ./cmd/stagegate-bench", 500
	var log bytes.Buffer
	rep, err := runBench(ctx, o, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for li, l := range rep.Results.Plan.Loads {
		for c := range numCases {
			x := rep.Results.Cells[li][c]
			if x.Out.OK == 0 || x.Out.Errors != 0 || x.Lost != 0 {
				t.Errorf("%s, %s: %d answered, %d errors %v, %.0f unpublished", l, caseNames[c], x.Out.OK, x.Out.Errors, x.Out.Sample, x.Lost)
			}
			if x.CPU <= 0 && c != caseDirect {
				t.Errorf("%s, %s: no server CPU measured", l, caseNames[c])
			}
			if x.Peak <= 0 || (c == caseSplit && x.PeakMon <= 0) {
				t.Errorf("%s, %s: no peak RSS measured", l, caseNames[c])
			}
			if l.Stream && len(x.Out.TTFT) != x.Out.OK {
				t.Errorf("%s, %s: %d TTFTs for %d streams", l, caseNames[c], len(x.Out.TTFT), x.Out.OK)
			}
		}
	}
	if rep.Decide.Calls != 500 || rep.Decide.Dist.P50 <= 0 || rep.DecideFresh.Dist.P50 <= 0 {
		t.Errorf("decide not measured: %+v / %+v", rep.Decide, rep.DecideFresh)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range append(caseNames[:], "Notes written by hand.", "- an earlier entry", markLatestBegin, markLatestEnd,
		"### Targets", "`go test ./cmd/stagegate-bench`", "(quick)") {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Index(doc, "- an earlier entry") > strings.LastIndex(doc, "(quick)") {
		t.Error("the new history line is not appended after the earlier one")
	}
}

func TestQuantiles(t *testing.T) {
	var s samples
	for i := 1000; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Microsecond)
	}
	d := summarize(s)
	for _, tc := range []struct {
		got, want time.Duration
	}{{d.P50, 500 * time.Microsecond}, {d.P90, 900 * time.Microsecond}, {d.P99, 990 * time.Microsecond}, {d.P999, 999 * time.Microsecond}, {d.Max, time.Millisecond}} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s (%+v)", tc.got, tc.want, d)
		}
	}
	if summarize(nil).P50 != 0 || (samples{7}).quantile(0.99) != 7 {
		t.Error("edge cases")
	}
}

// simStream builds a stream as the simulator sends it.
func simStream(deltas []string, tail string) string {
	var b strings.Builder
	for i, d := range deltas {
		role := ""
		if i == 0 {
			role = `"role":"assistant",`
		}
		fmt.Fprintf(&b, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":%q},\"finish_reason\":null}]}\n\n", role, d)
	}
	b.WriteString("data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	b.WriteString(tail)
	return b.String()
}

func TestReadStreamChecksBoundariesAndOrder(t *testing.T) {
	chk := &checker{answer: "Hello big world", deltas: []string{"Hello", " big", " world"}}
	for _, tc := range []struct {
		name, stream, err string
	}{
		{"as sent", simStream([]string{"Hello", " big", " world"}, "data: [DONE]\n\n"), ""},
		{"chunks merged", simStream([]string{"Hello big", " world"}, "data: [DONE]\n\n"), "2 content chunks"},
		{"reordered", simStream([]string{"Hello", " world", " big"}, "data: [DONE]\n\n"), "chunk 1"},
		{"no done", simStream([]string{"Hello", " big", " world"}, ""), "without [DONE]"},
		{"after done", simStream([]string{"Hello", " big", " world"}, "data: [DONE]\n\ndata: {}\n\n"), "after [DONE]"},
		{"two data lines", "data: {}\ndata: {}\n\n", "two data lines"},
		{"error event", simStream([]string{"Hello"}, `data: {"error":{"message":"broken"}}`+"\n\n"), "not a chat.completion.chunk"},
	} {
		first := 0
		err := chk.readStream(strings.NewReader(tc.stream), func() { first++ })
		switch {
		case tc.err == "" && (err != nil || first != 1):
			t.Errorf("%s: %v (first called %d times)", tc.name, err, first)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestCheckCompletion(t *testing.T) {
	chk := &checker{answer: "Hi there"}
	good := `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}]}`
	if err := chk.checkCompletion([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"error":{"message":"x"}}`, strings.Replace(good, "Hi there", "Hi", 1), strings.Replace(good, `"stop"`, `"length"`, 1), `not json`} {
		if chk.checkCompletion([]byte(bad)) == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestGeneratedGatewayConfigIsValid(t *testing.T) {
	for _, natsListen := range []string{"", "127.0.0.1:4999"} {
		raw := gatewayConfig(t.TempDir(), natsListen, "tok", [2]string{"k1", "k2"}, "http://127.0.0.1:1", "http://127.0.0.1:2", 2*time.Minute)
		cfg, err := sandbox.Parse("generated.yaml", []byte(raw))
		if err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		if err := cfg.WithDefaults().Validate(); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		if !cfg.Admin.Pprof || len(cfg.Trials) != 2 || len(cfg.Keys) != 2 || cfg.Monitors.Disabled != (natsListen != "") || cfg.NATS.Listen != natsListen {
			t.Fatalf("generated %+v", cfg)
		}
	}
}

func TestParseMicro(t *testing.T) {
	raw := "goos: linux\npkg: github.com/stagegate/stagegate/gateway\nBenchmarkDecodeChatRequest-2   \t  123456\t      9876 ns/op\t    4321 B/op\t      55 allocs/op\n" +
		"BenchmarkNoMem-2 100 12.5 ns/op\nPASS\npkg: github.com/stagegate/stagegate/policies\nBenchmarkExtract-2 1 2000 ns/op 450.1 MB/s 0 B/op 0 allocs/op\n" +
		"pkg: github.com/stagegate/stagegate/monitors/pii\nBenchmarkScan-2 10 99 ns/op\n"
	got := parseMicro([]byte(raw))
	if len(got) != 4 || got[3].Pkg != "monitors/pii" || got[0].Pkg != "gateway" || got[0].NsOp != 9876 || got[0].AllocsOp != 55 || got[1].HasMem || got[2].Pkg != "policies" || !got[2].HasMem {
		t.Fatalf("%+v", got)
	}
	if tbl := microTable(got); !strings.Contains(tbl, "| gateway | BenchmarkDecodeChatRequest-2 | 9876 | 4321 | 55 |") || !strings.Contains(tbl, "1 benchmarks of other packages") {
		t.Fatal(tbl)
	}
}

func TestUpdateFileKeepsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	if err := updateFile(path, markLatestBegin, markLatestEnd, "one\n", "- h1"); err != nil {
		t.Fatal(err)
	}
	if err := updateFile(path, markSoakBegin, markSoakEnd, "soak\n", "- h2"); err != nil {
		t.Fatal(err)
	}
	if err := updateFile(path, markLatestBegin, markLatestEnd, "two\n", "- h3"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	doc := string(raw)
	if strings.Contains(doc, "one\n") || !strings.Contains(doc, "two\n") || !strings.Contains(doc, "soak\n") {
		t.Fatalf("sections not replaced:\n%s", doc)
	}
	h := strings.Index(doc, historyHeading)
	i1, i2, i3 := strings.Index(doc, "- h1"), strings.Index(doc, "- h2"), strings.Index(doc, "- h3")
	if h < 0 || !(h < i1 && i1 < i2 && i2 < i3) || strings.Index(doc, "two") > h {
		t.Fatalf("history not kept in order after the sections:\n%s", doc)
	}
}

// FuzzReadStream feeds arbitrary streams to the checker: it must never panic,
// and must accept only streams that end in [DONE] with the expected chunks.
func FuzzReadStream(f *testing.F) {
	f.Add(simStream([]string{"a", " b"}, "data: [DONE]\n\n"))
	f.Add("data: [DONE]\n\n")
	f.Add("data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
	f.Add(": comment\n\nevent: x\n")
	chk := &checker{answer: "a b", deltas: []string{"a", " b"}}
	f.Fuzz(func(t *testing.T, s string) {
		err := chk.readStream(strings.NewReader(s), func() {})
		if err == nil && !strings.Contains(s, "[DONE]") {
			t.Fatalf("accepted a stream without [DONE]: %q", s)
		}
	})
}

func TestParseFuzzOutput(t *testing.T) {
	pass := "fuzz: elapsed: 0s, gathering baseline coverage: 0/84 completed\n" +
		"fuzz: elapsed: 3s, execs: 12001 (4000/sec), new interesting: 3 (total: 87)\n" +
		"fuzz: elapsed: 20s, execs: 87801 (4654/sec), new interesting: 76 (total: 160)\nPASS\nok  \tx\t20.1s\n"
	r := parseFuzzOutput("./incidents", "FuzzSplitStatements", pass, nil)
	if !r.Passed || r.Elapsed != "20s" || r.Execs != 87801 || r.Interesting != 76 || r.Corpus != 160 {
		t.Errorf("pass: %+v", r)
	}
	fail := "fuzz: elapsed: 2s, execs: 5000 (2500/sec), new interesting: 1 (total: 10)\n--- FAIL: FuzzX (2.01s)\n" +
		"    --- FAIL: FuzzX (0.00s)\n        x_test.go:9: boom\n\n    Failing input written to testdata/fuzz/FuzzX/0123abcd\n" +
		"    To re-run:\n    go test -run=FuzzX/0123abcd\nFAIL\n"
	r = parseFuzzOutput("./x", "FuzzX", fail, errors.New("exit status 1"))
	if r.Passed || r.Failure != "testdata/fuzz/FuzzX/0123abcd" || r.Execs != 5000 {
		t.Errorf("fail: %+v", r)
	}
	md := fuzzMarkdown(machine{Cores: 2, Command: "make fuzz"}, 20*time.Second, []fuzzResult{
		parseFuzzOutput("./incidents", "FuzzSplitStatements", pass, nil), r})
	for _, want := range []string{"| `./incidents` | `FuzzSplitStatements` | 20s | 87801 | 76 | 160 | pass |", "**FAIL**: testdata/fuzz/FuzzX/0123abcd", "2 targets, 92801 inputs in all, 1 failed."} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
