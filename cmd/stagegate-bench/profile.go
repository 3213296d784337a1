package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profileGateway loads a gateway ((c) or (d)) for d at the targets' load, open
// loop at 1000 requests/s, half the time plain and half streaming, while it
// fetches a CPU profile of the whole period from the admin API's /debug/pprof,
// then heap and allocation profiles. The profiles go to dir; the returned
// markdown summarises them.
func profileGateway(ctx context.Context, e *env, c int, dir string, d time.Duration) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	admin := e.adminC
	if c == caseSplit {
		admin = e.adminD
	}
	t := e.targets[c][0]
	var wg sync.WaitGroup
	var served outcome
	wg.Go(func() {
		served = loadSpec{Rate: 1000}.run(ctx, t, d/2, e.chk, e.bodies[0])
		served.merge(loadSpec{Rate: 1000, Stream: true}.run(ctx, t, d/2, e.chk, e.bodies[0]))
	})
	secs := max(int(d/time.Second), 1)
	cpuErr := e.fetchProfile(ctx, admin, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(dir, "cpu.pprof"))
	wg.Wait()
	if cpuErr != nil {
		return "", cpuErr
	}
	for _, p := range []struct{ path, file string }{{"/debug/pprof/heap", "heap.pprof"}, {"/debug/pprof/allocs", "allocs.pprof"}} {
		if err := e.fetchProfile(ctx, admin, p.path, filepath.Join(dir, p.file)); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Open loop 1000 req/s against %s for %s (half plain, half streamed; %d answers, %d errors); profiles in `%s` "+
		"(`go tool pprof -http :0 %s`).\n\n", caseNames[c], d, served.OK, served.Errors, dir, filepath.Join(dir, "cpu.pprof"))
	for _, v := range []struct {
		title, file string
		args        []string
	}{
		{"CPU, top functions by flat time", "cpu.pprof", []string{"-top", "-nodecount=25"}},
		{"CPU, cumulative, the gateway's own code", "cpu.pprof", []string{"-top", "-cum", "-nodecount=25", "-focus=stagegate"}},
		{"Allocated bytes since start, top functions", "allocs.pprof", []string{"-top", "-sample_index=alloc_space", "-nodecount=20"}},
	} {
		top, err := pprofTop(ctx, filepath.Join(dir, v.file), v.args...)
		if err != nil {
			fmt.Fprintf(&b, "(%s: %v)\n\n", v.title, err)
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, strings.TrimSuffix(v.file, ".pprof")+"-"+strings.ReplaceAll(strings.Join(v.args, ""), "=", "")+".txt"), []byte(top), 0o644)
		fmt.Fprintf(&b, "%s:\n\n```\n%s\n```\n\n", v.title, strings.TrimSpace(top))
	}
	return b.String(), nil
}

// fetchProfile GETs a pprof endpoint of a gateway's admin API into file.
func (e *env) fetchProfile(ctx context.Context, admin, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("pprof %s: status %d: %s", path, resp.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTop runs `go tool pprof` on a profile, keeping the table only.
func pprofTop(ctx context.Context, file string, args ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go on PATH for go tool pprof")
	}
	cmd := exec.CommandContext(ctx, goBin, append(append([]string{"tool", "pprof"}, args...), file)...)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	// Drop the header lines (file, type, time) but keep the totals line.
	var keep []string
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, strings.TrimRight(line, "\n"))
	}
	return strings.Join(keep, "\n"), nil
}
