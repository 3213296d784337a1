package gateway

import (
	"testing"
	"time"

	"github.com/stagegate/stagegate/internal/clock"
)

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	b := newBreaker(3, 10*time.Second, clk)
	for range 2 {
		if !b.allow() {
			t.Fatal("closed breaker refused")
		}
		b.record(false)
	}
	b.record(true) // a success resets the count
	for range 3 {
		b.allow()
		b.record(false)
	}
	if st, opened := b.snapshot(); st != BreakerOpen || opened != 1 {
		t.Fatalf("state %s opened %d", st, opened)
	}
	if b.allow() {
		t.Fatal("open breaker allowed a call")
	}
	clk.Advance(10 * time.Second)
	if !b.allow() {
		t.Fatal("no probe after the cooldown")
	}
	if b.allow() {
		t.Fatal("second concurrent probe allowed")
	}
	b.record(false) // failed probe: open again
	if st, _ := b.snapshot(); st != BreakerOpen || b.allow() {
		t.Fatalf("after failed probe: %s", st)
	}
	clk.Advance(10 * time.Second)
	if !b.allow() {
		t.Fatal("no second probe")
	}
	b.record(true)
	if st, opened := b.snapshot(); st != BreakerClosed || opened != 2 || !b.allow() {
		t.Fatalf("after good probe: %s, opened %d", st, opened)
	}
}
