package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100 on
// every Linux this runs on (checked against getconf at start when available).
var clockTicks int64 = 100

// proc is one server process under test.
type proc struct {
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string      // stdout, line by line
	stderr  bytes.Buffer  // the last maxStderr bytes of stderr
	changed chan struct{} // a new line arrived, or the process ended
	exited  chan struct{}
	waitErr error
}

const maxStderr = 32 << 10

// startProc runs bin with args; stdout is kept line by line, stderr's tail for
// error messages. The process is killed if the harness dies.
func startProc(name, bin string, args []string, env []string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, changed: make(chan struct{}, 1), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			p.notify()
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	wg.Go(func() {
		buf := make([]byte, 8<<10)
		for {
			n, err := stderr.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.stderr.Write(buf[:n])
				if p.stderr.Len() > maxStderr {
					tail := append([]byte(nil), p.stderr.Bytes()[p.stderr.Len()-maxStderr/2:]...)
					p.stderr.Reset()
					p.stderr.Write(tail)
				}
				p.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	})
	go func() {
		wg.Wait() // the pipes must be read to the end before Wait
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.exited)
		p.notify()
	}()
	return p, nil
}

func (p *proc) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stderrTail is the end of what the process wrote to stderr.
func (p *proc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stderr.String()
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// waitLine waits until a stdout line matches re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if m := re.FindStringSubmatch(p.lines[seen]); m != nil {
				p.mu.Unlock()
				return m, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before it was ready (%v): %s", p.name, p.waitErr, p.stderrTail())
		default:
		}
		select {
		case <-p.changed:
		case <-deadline.C:
			return nil, fmt.Errorf("%s not ready within %s: %s", p.name, timeout, p.stderrTail())
		}
	}
}

// alive reports an error when the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.waitErr, p.stderrTail())
	default:
		return nil
	}
}

// stop asks the process to end (SIGTERM) and kills it after timeout.
func (p *proc) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		var ee *exec.ExitError
		if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
			return p.waitErr
		}
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w: %s", p.name, p.waitErr, strings.TrimSpace(p.stderr.String()))
		}
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %s; killed", p.name, timeout)
	}
}

// cpuTime is the process's user+system CPU time so far, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	// After the name: state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed utime/stime in /proc stat")
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks), nil
}

// statusKB reads one "Name:  N kB" line of /proc/<pid>/status, in bytes.
func statusKB(pid int, name string) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return n << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}

// peakRSS is the process's peak resident set (VmHWM) since start or the last resetPeak.
func peakRSS(pid int) (int64, error) { return statusKB(pid, "VmHWM") }

// rss is the current resident set (VmRSS).
func rss(pid int) (int64, error) { return statusKB(pid, "VmRSS") }

// resetPeak resets VmHWM to the current RSS (Linux clear_refs 5), so a window's
// peak is its own; false when the kernel refuses.
func resetPeak(pid int) bool {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0) == nil
}

// checkClockTicks asks getconf for USER_HZ when it is installed.
func checkClockTicks() {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
		clockTicks = n
	}
}
