// Package testutil holds helpers for tests that run real parts in-process:
// an embedded JetStream server, and a condition poll with a deadline instead of sleeps.
package testutil

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// WaitFor polls cond every few milliseconds until it returns true or the deadline
// passes, in which case the test fails with msg.
func WaitFor(t testing.TB, deadline time.Duration, msg string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("condition not met within %s: %s", deadline, msg)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// JetStream starts an embedded nats-server with JetStream storing under a temp
// dir, with no TCP listener, and returns it with an in-process connection. Both are
// closed when the test ends.
func JetStream(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	return JetStreamAt(t, t.TempDir())
}

// JetStreamAt is JetStream with a given store dir, for restart tests.
func JetStreamAt(t testing.TB, dir string) (*server.Server, *nats.Conn) {
	t.Helper()
	opts := &server.Options{
		ServerName:         "test",
		JetStream:          true,
		StoreDir:           dir,
		DontListen:         true,
		NoLog:              true,
		NoSigs:             true,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns, nc
}
