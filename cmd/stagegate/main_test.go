package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/testutil"
)

// syncBuffer is written by the command while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelpAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "Commands:"},
		{[]string{"help"}, 0, "run the whole sandbox"},
		{[]string{"up", "--help"}, 0, "--data-dir"},
		{[]string{"help", "sim"}, 0, "[sim:pii]"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"up", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"up", "--config", "/does/not/exist.yaml"}, 1, "no such file"},
		{[]string{"version"}, 0, "stagegate "},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", tc.args, code, out.String()+errOut.String(), tc.code, tc.out)
		}
	}
}

// TestUpPrintsAWorkingCurlLine runs `stagegate up` as `make run` does (on random
// ports) and executes the first curl line it prints.
func TestUpPrintsAWorkingCurlLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"up", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, &out, &errOut)
	}()
	curl := regexp.MustCompile(`curl -s (\S+) -H 'Authorization: Bearer (\S+)' -H 'Content-Type: application/json' -d '([^']+)'`)
	var m []string
	testutil.WaitFor(t, 30*time.Second, "banner with a curl line", func() bool {
		select {
		case code := <-done:
			t.Fatalf("up exited with %d: %s", code, errOut.String())
		default:
		}
		m = curl.FindStringSubmatch(out.String())
		return m != nil
	})
	if !strings.Contains(out.String(), "DEMO MODE") {
		t.Error("demo mode is not announced")
	}
	req, _ := http.NewRequest(http.MethodPost, m[1], strings.NewReader(m[3]))
	req.Header.Set("Authorization", "Bearer "+m[2])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"chat.completion"`) {
		t.Fatalf("curl line answered %d: %s", resp.StatusCode, body)
	}
	cancel() // as SIGINT would
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("up exited with %d after shutdown: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not shut down")
	}
}
