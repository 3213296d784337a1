package gateway

import (
	"testing"
	"time"
)

func TestQuotasCountPerUserPerDayAndStreams(t *testing.T) {
	q := newQuotas()
	now := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC)
	caps := Caps{RequestsPerUserPerDay: 2, ConcurrentStreams: 1}
	for i := range 2 {
		if q.over("t\x00alice", now, caps, false) {
			t.Fatalf("request %d over quota", i)
		}
		q.admit("t\x00alice", now, caps, false)
	}
	if !q.over("t\x00alice", now, caps, false) {
		t.Fatal("third request of the day not over quota")
	}
	if q.over("t\x00bob", now, caps, false) {
		t.Fatal("another user is over quota")
	}
	if q.over("t\x00alice", now.Add(2*time.Minute), caps, false) {
		t.Fatal("the count did not reset at midnight UTC")
	}
	release := q.admit("t\x00bob", now, caps, true)
	if !q.over("t\x00bob", now, Caps{ConcurrentStreams: 1}, true) {
		t.Fatal("second concurrent stream allowed")
	}
	if q.over("t\x00bob", now, Caps{ConcurrentStreams: 1}, false) {
		t.Fatal("a plain request counted against the stream cap")
	}
	release()
	if q.over("t\x00bob", now, Caps{ConcurrentStreams: 1}, true) {
		t.Fatal("released stream still counted")
	}
}
