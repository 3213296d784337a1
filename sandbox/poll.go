package sandbox

import "time"

// poller runs a function every interval on its own goroutine until halted:
// the store polls of API keys (keys.go) and applied trials (trials_live.go).
// The zero value is idle; halt on an idle poller does nothing.
type poller struct {
	stop chan struct{}
	done chan struct{}
}

// start runs fn every interval (def when interval is not positive).
func (p *poller) start(interval, def time.Duration, fn func()) {
	if interval <= 0 {
		interval = def
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			fn()
		}
	}()
}

// halt stops the goroutine and waits until fn has returned.
func (p *poller) halt() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop = nil
}
