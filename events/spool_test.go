package events_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
)

// tcpNATS is a JetStream server on a loopback port that a test can stop and
// restart on the same port and store dir; clients reconnect to it over TCP.
type tcpNATS struct {
	t    *testing.T
	dir  string
	port int
	ns   *server.Server
}

func startTCPNATS(t *testing.T) *tcpNATS {
	t.Helper()
	s := &tcpNATS{t: t, dir: t.TempDir(), port: server.RANDOM_PORT}
	s.start()
	s.port = s.ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.stop)
	return s
}

func (s *tcpNATS) start() {
	s.t.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "spooltest", JetStream: true, StoreDir: s.dir, Host: "127.0.0.1", Port: s.port,
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30,
	})
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server not ready")
	}
	s.ns = ns
}

func (s *tcpNATS) stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

func (s *tcpNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// connect opens a client that keeps reconnecting, and its JetStream context.
func (s *tcpNATS) connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return nc, js
}

func spoolPublisher(t *testing.T, js jetstream.JetStream, dir string, clk clock.Clock, mut func(*events.PublisherConfig)) *events.Publisher {
	t.Helper()
	cfg := events.PublisherConfig{
		QueueSize: 1024, AckTimeout: 2 * time.Second, RetryInterval: 20 * time.Millisecond,
		Spool: events.SpoolConfig{Dir: dir, SegmentBytes: 64 << 10, MaxBytes: 64 << 20},
	}
	if mut != nil {
		mut(&cfg)
	}
	p, err := events.NewPublisher(cfg, events.PublisherDeps{JS: js, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func publishAll(t *testing.T, p *events.Publisher, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s_%04d", prefix, i)
		if err := p.Publish(sampleInteraction(ids[i])); err != nil {
			t.Fatalf("publish %s: %v", ids[i], err)
		}
	}
	return ids
}

// streamIDs counts every message of the INTERACTIONS stream by Nats-Msg-Id.
func streamIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamInteractions)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	if info.State.Msgs == 0 {
		return counts
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		counts[m.Header.Get(events.HeaderMsgID)]++
	}
	return counts
}

// assertExactlyOnce checks the stream holds every id of want once and nothing else.
func assertExactlyOnce(t *testing.T, js jetstream.JetStream, want []string) {
	t.Helper()
	got := streamIDs(t, js)
	var missing, dup []string
	for _, id := range want {
		switch got[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dup = append(dup, id)
		}
		delete(got, id)
	}
	if len(missing) > 0 || len(dup) > 0 || len(got) > 0 {
		t.Fatalf("stream vs %d ids: %d missing %v, %d duplicated %v, %d unexpected",
			len(want), len(missing), head(missing), len(dup), head(dup), len(got))
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	slices.Sort(m)
	return m
}

func TestPublisherHealthyPathNeverTouchesTheSpool(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js, _ := jetstream.New(nc)
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := spoolPublisher(t, js, dir, nil, nil)
	ids := publishAll(t, p, "ok", 200)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Published != 200 || st.Spooled != 0 || st.Lost != 0 || st.Degraded || st.SpoolBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	if segs := segments(t, dir); len(segs) != 0 {
		t.Fatalf("segments written on the healthy path: %v", segs)
	}
	assertExactlyOnce(t, js, ids)
}

func TestPublisherSpoolsWhileNATSDownAndReplaysExactlyOnce(t *testing.T) {
	srv := startTCPNATS(t)
	nc, js := srv.connect()
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	p := spoolPublisher(t, js, t.TempDir(), clk, nil)
	defer p.Stop(context.Background())
	before := publishAll(t, p, "up", 50)
	testutil.WaitFor(t, 10*time.Second, "published while up", func() bool { return p.Stats().Published == 50 })

	srv.stop()
	testutil.WaitFor(t, 10*time.Second, "client notices the outage", func() bool { return nc.Status() != nats.CONNECTED })
	down := publishAll(t, p, "down", 300)
	testutil.WaitFor(t, 10*time.Second, "all spooled", func() bool { return p.Stats().SpoolRecords == 300 })
	clk.Advance(42 * time.Second)
	st := p.Stats()
	if !st.Degraded || st.Spooled != 300 || st.SpoolOldest != 42*time.Second || st.SpoolBytes <= st.SpoolPendingBytes || st.Lost != 0 {
		t.Fatalf("while down: %+v", st)
	}

	srv.start()
	testutil.WaitFor(t, 30*time.Second, "spool replayed", func() bool {
		st := p.Stats()
		return st.SpoolRecords == 0 && st.Replayed >= 300 && !st.Degraded
	})
	after := publishAll(t, p, "back", 50)
	testutil.WaitFor(t, 10*time.Second, "published after recovery", func() bool { return p.Stats().Published == 100 })
	if st := p.Stats(); st.SpoolOldest != 0 || st.SpoolBytes != 0 || st.Lost != 0 || st.Failed != 0 {
		t.Fatalf("after recovery: %+v", st)
	}
	assertExactlyOnce(t, js, slices.Concat(before, down, after))
}

// A JetStream publish that is never acknowledged (here a plain subscriber
// swallows the subject, so there is no stream and no reply): a short ack timeout
// spools it, and a stop deadline spools what is still in flight.
func TestPublisherUnacknowledgedPublishesAreSpooledAndReplayed(t *testing.T) {
	srv := startTCPNATS(t)
	nc, js := srv.connect()
	sink, err := nc.Subscribe(events.SubjectInteractions+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// Slow NATS: acknowledgements time out, interactions go to the spool.
	p := spoolPublisher(t, js, dir, nil, func(c *events.PublisherConfig) { c.AckTimeout = 200 * time.Millisecond })
	slow := publishAll(t, p, "slow", 20)
	testutil.WaitFor(t, 10*time.Second, "timed-out publishes spooled", func() bool {
		st := p.Stats()
		return st.Spooled == 20 && st.Degraded
	})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Restarted on the same dir while NATS is still slow: the publisher starts
	// degraded and queues new interactions behind the spooled ones.
	p = spoolPublisher(t, js, dir, nil, func(c *events.PublisherConfig) { c.AckTimeout = 200 * time.Millisecond })
	if st := p.Stats(); !st.Degraded || st.SpoolRecords != 20 {
		t.Fatalf("restarted publisher: %+v", st)
	}
	behind := publishAll(t, p, "behind", 30)
	testutil.WaitFor(t, 10*time.Second, "queued behind the spool", func() bool { return p.Stats().Spooled == 30 })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.SpoolRecords != 50 || st.Lost != 0 || st.Published != 0 {
		t.Fatalf("after stop: %+v", st)
	}

	// NATS healthy again: a new publisher on the same dir replays all of it once.
	if err := sink.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	p = spoolPublisher(t, js, dir, nil, nil)
	defer p.Stop(context.Background())
	testutil.WaitFor(t, 30*time.Second, "replayed after restart", func() bool { return p.Stats().Replayed == 50 })
	assertExactlyOnce(t, js, slices.Concat(slow, behind))
}

func TestPublisherStopDeadlineSpoolsInFlight(t *testing.T) {
	srv := startTCPNATS(t)
	nc, js := srv.connect()
	sink, err := nc.Subscribe(events.SubjectInteractions+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := spoolPublisher(t, js, dir, nil, func(c *events.PublisherConfig) { c.AckTimeout = time.Minute })
	ids := publishAll(t, p, "inflight", 40)
	testutil.WaitFor(t, 10*time.Second, "all sent", func() bool { return p.Stats().QueueDepth == 0 })
	if st := p.Stats(); st.Spooled != 0 {
		t.Fatalf("spooled before the stop: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := p.Stats(); st.Spooled != 40 || st.SpoolRecords != 40 || st.Published != 0 {
		t.Fatalf("after stop: %+v", st)
	}
	_ = sink.Unsubscribe()
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	p = spoolPublisher(t, js, dir, nil, nil)
	defer p.Stop(context.Background())
	testutil.WaitFor(t, 30*time.Second, "replayed", func() bool { return p.Stats().Replayed == 40 })
	assertExactlyOnce(t, js, ids)
}

// A process crash: the old publisher is abandoned without Stop (its connection
// dies with it) and its spool dir is taken as it is on disk, with a torn record
// at the end of the last segment and a damaged record in the first one. A new
// publisher replays every good record, exactly once.
func TestPublisherReplaysSpoolOfCrashedProcess(t *testing.T) {
	srv := startTCPNATS(t)
	nc, js := srv.connect()
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	testutil.WaitFor(t, 10*time.Second, "client notices the outage", func() bool { return nc.Status() != nats.CONNECTED })
	dir := t.TempDir()
	old := spoolPublisher(t, js, dir, nil, nil)
	ids := publishAll(t, old, "crash", 200)
	testutil.WaitFor(t, 10*time.Second, "all spooled", func() bool { return old.Stats().SpoolRecords == 200 })
	nc.Close() // the process is gone: it will never publish again
	t.Cleanup(func() { _ = old.Stop(context.Background()) })

	crashed := t.TempDir()
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	for _, f := range segs {
		copyFile(t, f, filepath.Join(crashed, filepath.Base(f)))
	}
	// Damage the 3rd record of the first segment; the records after it in that
	// segment are lost, the ones before it and every other segment replay.
	first := filepath.Join(crashed, filepath.Base(segs[0]))
	offs := recordOffsets(t, first)
	raw, _ := os.ReadFile(first)
	raw[offs[2]+8+100] ^= 0xff
	_ = os.WriteFile(first, raw, 0o600)
	lost := len(offs) - 2
	// And a torn half record at the end of the last segment.
	last := filepath.Join(crashed, filepath.Base(segs[len(segs)-1]))
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 0})
	f.Close()

	srv.start()
	_, js2 := srv.connect()
	p := spoolPublisher(t, js2, crashed, nil, nil)
	defer p.Stop(context.Background())
	want := slices.Concat(ids[:2], ids[2+lost:])
	testutil.WaitFor(t, 30*time.Second, "crashed spool replayed", func() bool {
		st := p.Stats()
		return st.SpoolRecords == 0 && st.Replayed == uint64(len(want))
	})
	if st := p.Stats(); st.SpoolCorruptBytes == 0 {
		t.Fatalf("corruption not reported: %+v", st)
	}
	assertExactlyOnce(t, js2, want)
}

func TestPublisherSpoolFullCountsLossAndRecovers(t *testing.T) {
	srv := startTCPNATS(t)
	nc, js := srv.connect()
	if err := events.EnsureStreams(context.Background(), js, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	testutil.WaitFor(t, 10*time.Second, "client notices the outage", func() bool { return nc.Status() != nats.CONNECTED })
	p := spoolPublisher(t, js, t.TempDir(), nil, func(c *events.PublisherConfig) {
		c.Spool.MaxBytes, c.Spool.SegmentBytes = 1<<20, 64<<10
	})
	defer p.Stop(context.Background())
	var accepted, refused []string
	for i := 0; !p.Full() && i < 1000; i++ {
		id := fmt.Sprintf("full_%04d", i)
		in := sampleInteraction(id)
		in.Response.Content = strings.Repeat("a long answer ", 700) // ~10 KB
		if err := p.Publish(in); err != nil {
			t.Fatalf("publish %s before full: %v", id, err)
		}
		accepted = append(accepted, id)
		testutil.WaitFor(t, 5*time.Second, "spooled", func() bool {
			st := p.Stats()
			return st.Spooled+st.Lost == uint64(len(accepted))
		})
	}
	if !p.Full() {
		t.Fatal("spool never became full")
	}
	for i := range 5 {
		id := fmt.Sprintf("refused_%d", i)
		if err := p.Publish(sampleInteraction(id)); !errors.Is(err, events.ErrSpoolFull) {
			t.Fatalf("publish while full and down: %v, want ErrSpoolFull", err)
		}
		refused = append(refused, id)
	}
	st := p.Stats()
	if st.Lost < 5 || st.Spooled+st.Lost != uint64(len(accepted)+len(refused)) || st.SpoolBytes > 1<<20 {
		t.Fatalf("accounting: %+v with %d accepted, %d refused", st, len(accepted), len(refused))
	}
	spooled := accepted[:st.Spooled] // in order: the first ones fit

	srv.start()
	testutil.WaitFor(t, 30*time.Second, "replayed", func() bool { return p.Stats().SpoolRecords == 0 })
	if p.Full() {
		t.Fatal("still full after the replay")
	}
	assertExactlyOnce(t, js, spooled)
}

func TestPublisherConfigValidate(t *testing.T) {
	err := events.PublisherConfig{QueueSize: -1, AckTimeout: -1, RetryInterval: -1, Spool: events.SpoolConfig{Fsync: "often"}}.Validate()
	for _, want := range []string{"queue size", "ack timeout", "retry interval", "fsync"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// recordOffsets walks a segment by its length fields (format in spool_format.go).
func recordOffsets(t *testing.T, path string) []int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 8; off+8 <= len(raw); {
		offs = append(offs, off)
		off += 8 + int(binary.LittleEndian.Uint32(raw[off:]))
	}
	return offs
}
