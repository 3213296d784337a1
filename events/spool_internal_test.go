package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/internal/testutil"
)

func testMsg(id string, size int) *nats.Msg {
	m := nats.NewMsg("stagegate.interactions.demo.m")
	m.Data = bytes.Repeat([]byte{'x'}, size)
	m.Header.Set(HeaderMsgID, id)
	m.Header.Set(HeaderTraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-4bf92f3577b34da6-01")
	return m
}

func openTestSpool(t testing.TB, cfg SpoolConfig, clk clock.Clock) *spool {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Fsync == "" {
		cfg.Fsync = FsyncNever
	}
	s, err := openSpool(cfg, clock.OrReal(clk), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain replays everything through next/commit and returns the ids in order.
func drain(t *testing.T, s *spool) []string {
	t.Helper()
	var ids []string
	var buf []byte
	for {
		rec, pos, ok, err := s.next(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ids
		}
		if rec.header.Get(HeaderMsgID) != rec.id || rec.subject != "stagegate.interactions.demo.m" {
			t.Fatalf("record %s decoded wrong: %+v", rec.id, rec)
		}
		ids = append(ids, rec.id)
		if err := s.commit(pos); err != nil {
			t.Fatal(err)
		}
	}
}

func appendN(t *testing.T, s *spool, from, n, size int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("int_%04d", i)
		if err := s.append(testMsg(id, size), id); err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
		ids = append(ids, id)
	}
	return ids
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestSpoolRotatesReplaysInOrderAndDeletesSegments(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	s := openTestSpool(t, SpoolConfig{Dir: dir, SegmentBytes: 4 << 10, MaxBytes: 1 << 20}, clk)
	want := appendN(t, s, 0, 10, 1000) // ~1.1 KiB records: 3 per segment
	if n := len(segFiles(t, dir)); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	clk.Advance(90 * time.Second)
	st := s.stats()
	if st.records != 10 || st.oldest != 90*time.Second || st.bytes != st.pendingBytes+4*segHeaderLen {
		t.Fatalf("stats %+v", st)
	}
	if got := drain(t, s); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if st := s.stats(); st.records != 0 || st.bytes != 0 || st.oldest != 0 || st.pendingBytes != 0 {
		t.Fatalf("after replay: %+v", st)
	}
	if n := len(segFiles(t, dir)); n != 0 {
		t.Fatalf("%d segments left after a full replay", n)
	}
	// Appending again after a full replay starts a fresh segment.
	more := appendN(t, s, 10, 2, 10)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, SpoolConfig{Dir: dir}, clk)
	defer s.close()
	if got := drain(t, s); !slices.Equal(got, more) {
		t.Fatalf("after reopen replayed %v, want %v", got, more)
	}
}

func TestSpoolCursorSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, SpoolConfig{Dir: dir, SegmentBytes: 4 << 10}, nil)
	ids := appendN(t, s, 0, 7, 1000)
	var buf []byte
	for range 4 { // replay 4 (the first segment and one more), then "restart"
		_, pos, ok, err := s.next(&buf)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := s.commit(pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	if got := drain(t, s); !slices.Equal(got, ids[4:]) {
		t.Fatalf("resumed with %v, want %v", got, ids[4:])
	}
	s.close()

	// An unreadable cursor replays everything that is left (JetStream drops the
	// duplicates) rather than skipping anything.
	dir = t.TempDir()
	s = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	ids = appendN(t, s, 0, 3, 10)
	_, pos, _, _ := s.next(&buf)
	_ = s.commit(pos)
	s.close()
	if err := os.WriteFile(filepath.Join(dir, cursorFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	defer s.close()
	if got := drain(t, s); !slices.Equal(got, ids) {
		t.Fatalf("with a bad cursor replayed %v, want %v", got, ids)
	}
}

func TestSpoolTornTailIsTruncatedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	ids := appendN(t, s, 0, 5, 100)
	s.close()
	seg := segFiles(t, dir)[0]
	st, _ := os.Stat(seg)
	good := st.Size()
	// A crash mid-write leaves the first half of a record.
	half, err := appendRecord(nil, 1, "int_torn", testMsg("int_torn", 100))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(half[:len(half)/2])
	f.Close()

	s = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	defer s.close()
	if st, _ := os.Stat(seg); st.Size() != good {
		t.Fatalf("segment is %d bytes after open, want truncated to %d", st.Size(), good)
	}
	if c := s.stats().corrupt; c != int64(len(half)/2) {
		t.Fatalf("corrupt bytes %d, want %d", c, len(half)/2)
	}
	if got := drain(t, s); !slices.Equal(got, ids) {
		t.Fatalf("replayed %v, want %v", got, ids)
	}
}

func TestSpoolCorruptRecordSkipsRestOfSegmentOnly(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, SpoolConfig{Dir: dir, SegmentBytes: 4 << 10}, nil)
	ids := appendN(t, s, 0, 9, 1000) // 3 segments of 3 records
	s.close()
	first := segFiles(t, dir)[0]
	raw, _ := os.ReadFile(first)
	// Flip one data byte of the second record of the first segment.
	var offs []int64
	if _, err := scanSegment(bytes.NewReader(raw), int64(len(raw)), 0, func(_ *spoolRecord, off, _ int64) { offs = append(offs, off) }); err != nil || len(offs) != 3 {
		t.Fatalf("scan: %v, %d records", err, len(offs))
	}
	raw[offs[1]+recHeaderLen+200] ^= 0xff
	if err := os.WriteFile(first, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := scanSegment(bytes.NewReader(raw), int64(len(raw)), 0, nil); !errors.Is(err, ErrSpoolCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("scan of the damaged segment: %v", err)
	}
	s = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	defer s.close()
	want := append([]string{ids[0]}, ids[3:]...)
	if got := drain(t, s); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if s.stats().corrupt == 0 {
		t.Fatal("corruption not counted")
	}
}

func TestSpoolFullRefusesAndRecovers(t *testing.T) {
	const maxBytes = 4 << 20
	s := openTestSpool(t, SpoolConfig{MaxBytes: maxBytes, SegmentBytes: 64 << 10}, nil)
	defer s.close()
	var n int
	var err error
	for n = 0; n < 1000; n++ {
		if err = s.append(testMsg("int_x", 10<<10), "int_x"); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrSpoolFull) || !s.full.Load() || n < 350 {
		t.Fatalf("after %d appends: %v, full=%v", n, err, s.full.Load())
	}
	if st := s.stats(); st.bytes > maxBytes || st.records != int64(n) {
		t.Fatalf("stats %+v after %d appends, limit %d", st, n, maxBytes)
	}
	// Replaying deletes segments; once more than the headroom is free the spool
	// is no longer full.
	var buf []byte
	replayed := 0
	for s.full.Load() && replayed < n {
		_, pos, ok, err := s.next(&buf)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := s.commit(pos); err != nil {
			t.Fatal(err)
		}
		replayed++
	}
	if s.full.Load() || replayed > (spoolHeadroom+(64<<10))/(10<<10)+1 {
		t.Fatalf("full=%v after replaying %d records", s.full.Load(), replayed)
	}
	if err := s.append(testMsg("int_y", 10), "int_y"); err != nil {
		t.Fatal(err)
	}
}

func TestSpoolDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	if _, err := openSpool(SpoolConfig{Dir: dir}, clock.Real{}, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrSpoolLocked) {
		t.Fatalf("second open: %v, want ErrSpoolLocked", err)
	}
	s.close()
	s2 := openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	s2.close()
}

func TestSpoolRejectsBadRecords(t *testing.T) {
	s := openTestSpool(t, SpoolConfig{}, nil)
	defer s.close()
	for _, tc := range []struct {
		name string
		id   string
		msg  *nats.Msg
		want error
	}{
		{"no id", "", testMsg("", 1), ErrPayload},
		{"no subject", "a", &nats.Msg{Data: []byte("x")}, ErrPayload},
		{"too large", "a", testMsg("a", MaxSpoolRecordBytes), ErrPayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.append(tc.msg, tc.id); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if st := s.stats(); st.records != 0 {
		t.Fatalf("refused records were counted: %+v", st)
	}
}

func TestSpoolConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  SpoolConfig
		want []string
	}{
		{"defaults", SpoolConfig{}, nil},
		{"explicit", SpoolConfig{MaxBytes: 1 << 20, SegmentBytes: 1 << 18, Fsync: FsyncAlways, FsyncInterval: time.Second}, nil},
		{"all wrong", SpoolConfig{MaxBytes: -1, SegmentBytes: -1, Fsync: "sometimes", FsyncInterval: -1},
			[]string{"max bytes", "segment bytes", "fsync \"sometimes\"", "fsync interval"}},
		{"segment above max", SpoolConfig{MaxBytes: 1 << 20, SegmentBytes: 2 << 20}, []string{"must not exceed"}},
		{"tiny", SpoolConfig{MaxBytes: 1000}, []string{"want at least"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCursorEncoding(t *testing.T) {
	b := encodeCursor(42, 4096)
	seg, off, err := decodeCursor(b)
	if err != nil || seg != 42 || off != 4096 {
		t.Fatalf("round trip: %d %d %v", seg, off, err)
	}
	b[10] ^= 1
	if _, _, err := decodeCursor(b); !errors.Is(err, ErrSpoolCorrupt) {
		t.Fatalf("damaged cursor: %v", err)
	}
}

// FuzzSpoolSegment feeds arbitrary bytes to the segment reader: it must never
// panic or read out of bounds, must stop at the first bad record with
// ErrSpoolCorrupt, every record it accepts must survive an encode/decode round
// trip, and the accepted records laid end to end must scan again cleanly.
func FuzzSpoolSegment(f *testing.F) {
	seg := []byte(segMagic)
	for i, size := range []int{0, 10, 300} {
		id := fmt.Sprintf("int_%d", i)
		var err error
		if seg, err = appendRecord(seg, int64(i), id, testMsg(id, size)); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-7])                                 // torn tail
	f.Add([]byte(segMagic))                                 // empty segment
	f.Add(append([]byte(segMagic), 0xff, 0xff, 0xff, 0x7f)) // absurd length
	f.Add([]byte("not a segment at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out []byte
		good, err := scanSegment(bytes.NewReader(data), int64(len(data)), 0, func(rec *spoolRecord, off, next int64) {
			if off < segHeaderLen || next <= off || next > int64(len(data)) {
				t.Fatalf("record bounds %d..%d outside %d bytes", off, next, len(data))
			}
			if len(rec.header) > maxSpoolHeaders || rec.id == "" || rec.subject == "" {
				t.Fatalf("accepted a record outside the limits: %+v", rec)
			}
			enc, err := appendRecord(nil, rec.at, rec.id, rec.msg())
			if err != nil {
				t.Fatalf("accepted record does not re-encode: %v", err)
			}
			back, _, _, err := readRecord(bytes.NewReader(enc), 0, int64(len(enc)), nil)
			if err != nil || back.at != rec.at || back.id != rec.id || back.subject != rec.subject ||
				!bytes.Equal(back.data, rec.data) || fmt.Sprint(back.header) != fmt.Sprint(rec.header) {
				t.Fatalf("round trip changed the record: %v\n%+v\n%+v", err, rec, back)
			}
			out = append(out, data[off:next]...)
		})
		if good > int64(len(data)) || (err == nil && good != int64(len(data))) {
			t.Fatalf("good end %d of %d bytes, err %v", good, len(data), err)
		}
		if err != nil && !errors.Is(err, ErrSpoolCorrupt) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if good >= segHeaderLen {
			// The accepted prefix scans again to the same records, cleanly.
			again := append([]byte(segMagic), out...)
			if g2, err2 := scanSegment(bytes.NewReader(again), int64(len(again)), 0, nil); err2 != nil || g2 != int64(len(again)) {
				t.Fatalf("accepted prefix does not rescan: %d of %d, %v", g2, len(again), err2)
			}
		}
	})
}

func BenchmarkSpoolAppend(b *testing.B) {
	for _, policy := range []string{FsyncNever, FsyncInterval, FsyncAlways} {
		b.Run(policy, func(b *testing.B) {
			s := openTestSpool(b, SpoolConfig{Fsync: policy, MaxBytes: 1 << 40, SegmentBytes: 64 << 20}, nil)
			defer s.close()
			msg := testMsg("int_0000000000000000000000000000000000", 2<<10) // a typical 2 KiB interaction
			b.SetBytes(int64(len(msg.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.append(msg, "int_0000000000000000000000000000000000"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A full in-memory queue sends the interaction straight to the spool from
// Publish (no goroutine runs here, so the queue stays full); once started, the
// queued ones are published and the spooled ones replayed, each once.
func TestPublishOverflowsFullQueueToSpool(t *testing.T) {
	_, nc := testutil.JetStream(t)
	js, _ := jetstream.New(nc)
	if err := EnsureStreams(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := NewPublisher(PublisherConfig{QueueSize: 2, RetryInterval: 10 * time.Millisecond, Spool: SpoolConfig{Dir: dir}},
		PublisherDeps{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	p.spool = openTestSpool(t, SpoolConfig{Dir: dir}, nil)
	p.sp.Store(p.spool)
	for i := range 5 {
		in := &Interaction{ID: fmt.Sprintf("int_%d", i), Trial: "demo", Model: "m", Status: StatusOK}
		if err := p.Publish(in); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if st := p.Stats(); st.Enqueued != 2 || st.Spooled != 3 || st.SpoolRecords != 3 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := p.spool.close(); err != nil {
		t.Fatal(err)
	}
	p.spool = nil
	p.sp.Store(nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	testutil.WaitFor(t, 10*time.Second, "all published", func() bool {
		st := p.Stats()
		return st.Replayed == 5 && st.SpoolRecords == 0 && !st.Degraded
	})
	// Started with records in the spool, the publisher queued the two in-memory
	// interactions behind them: all five went through the replay, in order.
	if st := p.Stats(); st.Published != 0 || st.Spooled != 5 || st.Degraded {
		t.Fatalf("stats %+v", st)
	}
	st, _ := js.Stream(context.Background(), StreamInteractions)
	info, _ := st.Info(context.Background())
	if info.State.Msgs != 5 {
		t.Fatalf("stream holds %d messages, want 5", info.State.Msgs)
	}
}

// BenchmarkPublishWithSpool is the request-path cost of Publish with a spool
// configured and NATS healthy (the queue is emptied off the clock whenever it
// fills, as the sender would): it must match BenchmarkPublishEnqueue, with no
// disk I/O.
func BenchmarkPublishWithSpool(b *testing.B) {
	_, nc := testutil.JetStream(b)
	js, _ := jetstream.New(nc)
	dir := b.TempDir()
	p, err := NewPublisher(PublisherConfig{QueueSize: 1 << 16, Spool: SpoolConfig{Dir: dir}}, PublisherDeps{JS: js})
	if err != nil {
		b.Fatal(err)
	}
	p.conn = nc
	p.spool = openTestSpool(b, SpoolConfig{Dir: dir}, nil)
	p.sp.Store(p.spool)
	defer p.spool.close()
	in := &Interaction{ID: "int_1", Trial: "demo", Model: "m", Status: StatusOK}
	b.ReportAllocs()
	for b.Loop() {
		if len(p.q) == cap(p.q) {
			b.StopTimer()
			for len(p.q) > 0 {
				<-p.q
			}
			b.StartTimer()
		}
		if err := p.Publish(in); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st := p.Stats(); st.Spooled != 0 || st.SpoolBytes != 0 {
		b.Fatalf("the healthy path touched the spool: %+v", st)
	}
}
