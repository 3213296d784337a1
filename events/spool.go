package events

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagegate/stagegate/internal/clock"
)

// Fsync policies of the spool.
const (
	// FsyncInterval syncs the segment being written every SpoolConfig.FsyncInterval
	// when it has new records: a process crash loses nothing (each record is one
	// write(2)), a power loss at most that interval. The default.
	FsyncInterval = "interval"
	// FsyncAlways syncs after every record: nothing is lost even on a power loss,
	// at the cost of one disk flush per spooled interaction.
	FsyncAlways = "always"
	// FsyncNever leaves flushing to the operating system: a process crash loses
	// nothing, a power loss what the kernel had not written yet.
	FsyncNever = "never"
)

// Defaults for SpoolConfig.
const (
	DefaultSpoolMaxBytes      = 1 << 30
	DefaultSpoolSegmentBytes  = 16 << 20
	DefaultSpoolFsync         = FsyncInterval
	DefaultSpoolFsyncInterval = 100 * time.Millisecond
	// spoolHeadroom: below this much free room the spool reports itself full, so
	// fail-closed trials refuse requests before an interaction is actually lost.
	spoolHeadroom = 256 << 10
	// cursorEvery persists the replay position after this many replayed records;
	// a crash replays at most these again, which JetStream de-duplicates.
	cursorEvery = 256
	segSuffix   = ".seg"
	cursorFile  = "cursor"
	lockFile    = "lock"
)

// SpoolConfig configures the on-disk spool of interactions that could not be
// published. With Dir empty there is no spool: such interactions are counted as
// failed and are lost.
type SpoolConfig struct {
	// Dir holds the segment files, the replay cursor and a lock file; created 0700.
	Dir string
	// MaxBytes bounds the disk the spool uses (default 1 GiB). When it is reached
	// new interactions that cannot be published are lost and counted (fail open)
	// or refused before serving (fail closed, see Publisher.Full).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started (default
	// 16 MiB); fully replayed segments are deleted.
	SegmentBytes int64
	// Fsync is the flush policy: "interval" (default), "always" or "never"
	// (see FsyncInterval, FsyncAlways, FsyncNever).
	Fsync string
	// FsyncInterval is the flush period of the "interval" policy (default 100ms).
	FsyncInterval time.Duration
}

// Validate reports every problem at once.
func (c SpoolConfig) Validate() error {
	var errs []error
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("spool max bytes %d: must not be negative", c.MaxBytes))
	}
	if c.SegmentBytes < 0 {
		errs = append(errs, fmt.Errorf("spool segment bytes %d: must not be negative", c.SegmentBytes))
	}
	if c.MaxBytes > 0 && c.SegmentBytes > c.MaxBytes {
		errs = append(errs, fmt.Errorf("spool segment bytes %d: must not exceed max bytes %d", c.SegmentBytes, c.MaxBytes))
	}
	if c.MaxBytes > 0 && c.MaxBytes < 2*spoolHeadroom {
		errs = append(errs, fmt.Errorf("spool max bytes %d: want at least %d", c.MaxBytes, 2*spoolHeadroom))
	}
	switch c.Fsync {
	case "", FsyncInterval, FsyncAlways, FsyncNever:
	default:
		errs = append(errs, fmt.Errorf("spool fsync %q: want interval, always or never", c.Fsync))
	}
	if c.FsyncInterval < 0 {
		errs = append(errs, fmt.Errorf("spool fsync interval %s: must not be negative", c.FsyncInterval))
	}
	return errors.Join(errs...)
}

func (c SpoolConfig) withDefaults() SpoolConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultSpoolMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = min(int64(DefaultSpoolSegmentBytes), c.MaxBytes/4)
	}
	if c.Fsync == "" {
		c.Fsync = DefaultSpoolFsync
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = DefaultSpoolFsyncInterval
	}
	return c
}

// segment is one segment file. Records before good are whole and checked; a
// sealed segment may have a corrupt rest after good, skipped by the reader.
type segment struct {
	seq     uint64
	size    int64 // bytes on disk
	good    int64 // end of the last good record
	pending int   // records not yet replayed
}

// spoolPos is the position after a record: where the replay continues.
type spoolPos struct {
	seq   uint64
	off   int64
	bytes int64 // size of the record it follows
}

// spool is an append-only, segmented, checksummed on-disk queue with one writer
// side (append) and one reader (next/commit, the replayer).
type spool struct {
	cfg    SpoolConfig
	clk    clock.Clock
	log    *slog.Logger
	lock   *os.File
	notify chan struct{} // signalled after an append

	mu        sync.Mutex
	closed    bool
	segs      []*segment // oldest first; the replay reads segs[0]
	w         *os.File   // the last segment, open for append; nil until the next append
	wseq      uint64     // sequence of the next new segment
	dirty     bool       // w has unsynced writes
	readOff   int64      // replay offset in segs[0]
	rf        *os.File   // segs[0] open for reading
	rfSeq     uint64
	records   int64
	pendBytes int64
	disk      int64
	uncommit  int // commits since the cursor was last persisted
	buf       []byte

	full     atomic.Bool
	oldestAt atomic.Int64 // Unix ns of the oldest pending record; 0 when empty
	corrupt  atomic.Int64 // bytes skipped as corrupt

	syncStop chan struct{}
	syncDone chan struct{}
}

// openSpool opens (creating) the spool directory: it takes the lock, reads the
// cursor, deletes replayed segments, checks every remaining record's checksum,
// truncates a torn tail of the last segment and counts what waits for replay.
func openSpool(cfg SpoolConfig, clk clock.Clock, log *slog.Logger) (*spool, error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, lockFile))
	if err != nil {
		return nil, err
	}
	s := &spool{cfg: cfg, clk: clk, log: log, lock: lock, notify: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	if cfg.Fsync == FsyncInterval {
		s.syncStop, s.syncDone = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

func (s *spool) segPath(seq uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d%s", seq, segSuffix))
}

func (s *spool) load() error {
	curSeq, curOff := uint64(0), segHeaderLen
	raw, err := os.ReadFile(filepath.Join(s.cfg.Dir, cursorFile))
	switch {
	case err == nil:
		if curSeq, curOff, err = decodeCursor(raw); err != nil {
			// Replaying from the start is safe: JetStream drops the duplicates.
			s.log.Warn("spool cursor unreadable; replaying every segment", "dir", s.cfg.Dir, "err", err)
			curSeq, curOff = 0, segHeaderLen
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("spool cursor: %w", err)
	}
	seqs, err := s.listSegments()
	if err != nil {
		return err
	}
	s.wseq = max(curSeq, 1)
	for i, seq := range seqs {
		s.wseq = max(s.wseq, seq+1)
		if seq < curSeq {
			if err := os.Remove(s.segPath(seq)); err != nil {
				return fmt.Errorf("spool: remove replayed segment: %w", err)
			}
			continue
		}
		from := segHeaderLen
		if seq == curSeq {
			from = curOff
		}
		if err := s.loadSegment(seq, from, i == len(seqs)-1); err != nil {
			return err
		}
	}
	s.full.Store(s.disk+spoolHeadroom > s.cfg.MaxBytes)
	return s.syncDir()
}

func (s *spool) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || len(name) != 20 || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// loadSegment checks one segment and counts its records from offset from; the
// last segment's torn or corrupt tail is truncated, an earlier segment's corrupt
// rest is skipped, and a segment with nothing left to replay is deleted.
func (s *spool) loadSegment(seq uint64, from int64, last bool) error {
	path := s.segPath(seq)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	seg := &segment{seq: seq, size: st.Size()}
	var firstAt, firstOff int64
	// A cursor offset that is not a record boundary (it never should be) moves to
	// the next boundary at or after it.
	good, serr := scanSegment(f, seg.size, segHeaderLen, func(rec *spoolRecord, off, next int64) {
		if off < from {
			return
		}
		if seg.pending == 0 {
			firstAt, firstOff = rec.at, off
		}
		seg.pending++
		s.pendBytes += next - off
	})
	seg.good = good
	if serr != nil && !errors.Is(serr, ErrSpoolCorrupt) {
		return fmt.Errorf("spool segment %s: %w", path, serr)
	}
	if serr != nil {
		lost := seg.size - good
		s.corrupt.Add(lost)
		if good < segHeaderLen {
			s.log.Error("spool segment unreadable; deleted", "segment", path, "bytes", seg.size, "err", serr)
			return os.Remove(path)
		}
		if last {
			s.log.Warn("spool segment has a torn or corrupt tail (crash?); truncated to its last good record",
				"segment", path, "good_bytes", good, "dropped_bytes", lost, "err", serr)
			if err := f.Truncate(good); err != nil {
				return fmt.Errorf("spool: truncate torn tail: %w", err)
			}
			if s.cfg.Fsync != FsyncNever {
				if err := f.Sync(); err != nil {
					return fmt.Errorf("spool: %w", err)
				}
			}
			seg.size = good
		} else {
			s.log.Error("spool segment corrupt; records after the damage are skipped",
				"segment", path, "good_bytes", good, "skipped_bytes", lost, "err", serr)
		}
	}
	if seg.pending == 0 {
		// Fully replayed: appends always start a new segment after an open.
		return os.Remove(path)
	}
	if len(s.segs) == 0 {
		s.readOff = firstOff
	}
	if s.records == 0 {
		s.oldestAt.Store(firstAt)
	}
	s.records += int64(seg.pending)
	s.disk += seg.size
	s.segs = append(s.segs, seg)
	return nil
}

// append writes one message to the spool. It refuses with ErrSpoolFull when the
// record does not fit under MaxBytes.
func (s *spool) append(msg *nats.Msg, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	at := s.clk.Now().UnixNano()
	var err error
	if s.buf, err = appendRecord(s.buf[:0], at, id, msg); err != nil {
		return err
	}
	n := int64(len(s.buf))
	newSeg := s.w == nil || (s.lastSeg().size+n > s.cfg.SegmentBytes && s.lastSeg().size > segHeaderLen)
	need := n
	if newSeg {
		need += segHeaderLen
	}
	if s.disk+need > s.cfg.MaxBytes {
		s.full.Store(true)
		return fmt.Errorf("%w: %d of %d bytes used", ErrSpoolFull, s.disk, s.cfg.MaxBytes)
	}
	if newSeg {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	seg := s.lastSeg()
	if _, err := s.w.Write(s.buf); err != nil {
		// Cut a partial write so the segment stays whole; a failed cut is found
		// as a torn record by the next open.
		_ = s.w.Truncate(seg.size)
		return fmt.Errorf("spool write: %w", err)
	}
	if s.cfg.Fsync == FsyncAlways {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("spool sync: %w", err)
		}
	} else {
		s.dirty = true
	}
	seg.size += n
	seg.good = seg.size
	seg.pending++
	s.disk += n
	s.pendBytes += n
	if s.records == 0 {
		s.oldestAt.Store(at)
	}
	s.records++
	s.full.Store(s.disk+spoolHeadroom > s.cfg.MaxBytes)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *spool) lastSeg() *segment { return s.segs[len(s.segs)-1] }

// rotate seals the segment being written and starts the next one.
func (s *spool) rotate() error {
	if s.w != nil {
		if err := s.closeWriter(); err != nil {
			return err
		}
	}
	seq := s.wseq
	f, err := os.OpenFile(s.segPath(seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		_ = os.Remove(s.segPath(seq))
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if err := s.syncDir(); err != nil {
		f.Close()
		return err
	}
	s.wseq++
	s.w = f
	if len(s.segs) == 0 {
		s.readOff = segHeaderLen
	}
	s.segs = append(s.segs, &segment{seq: seq, size: segHeaderLen, good: segHeaderLen})
	s.disk += segHeaderLen
	return nil
}

func (s *spool) closeWriter() error {
	var err error
	if s.cfg.Fsync != FsyncNever {
		err = s.w.Sync()
	}
	err = errors.Join(err, s.w.Close())
	s.w, s.dirty = nil, false
	if err != nil {
		return fmt.Errorf("spool: seal segment: %w", err)
	}
	return nil
}

// next reads the oldest record waiting for replay, skipping corrupt rests of
// segments; ok is false when nothing waits. Only the replayer calls it, and the
// record aliases *buf until the next call.
func (s *spool) next(buf *[]byte) (rec spoolRecord, pos spoolPos, ok bool, err error) {
	for {
		s.mu.Lock()
		if s.closed || s.records == 0 || len(s.segs) == 0 {
			s.mu.Unlock()
			return rec, pos, false, nil
		}
		seg := s.segs[0]
		if s.readOff >= seg.good {
			if s.w != nil && len(s.segs) == 1 {
				// The writer's segment has nothing more yet.
				s.mu.Unlock()
				return rec, pos, false, nil
			}
			if seg.pending != 0 { // cannot happen; never let a miscount stall the replay
				s.log.Error("spool segment read to its end with records still counted", "segment", s.segPath(seg.seq), "records", seg.pending)
				s.records -= int64(seg.pending)
				seg.pending = 0
			}
			err := s.dropHeadLocked()
			s.mu.Unlock()
			if err != nil {
				return rec, pos, false, err
			}
			continue
		}
		if s.rf == nil || s.rfSeq != seg.seq {
			if s.rf != nil {
				s.rf.Close()
			}
			if s.rf, err = os.Open(s.segPath(seg.seq)); err != nil {
				s.rf = nil
				s.mu.Unlock()
				return rec, pos, false, fmt.Errorf("spool: %w", err)
			}
			s.rfSeq = seg.seq
		}
		rf, off, limit := s.rf, s.readOff, seg.good
		s.mu.Unlock()

		// Read outside the lock: [off, limit) is written and never rewritten, and
		// only this goroutine moves the read position or closes rf.
		var next int64
		rec, next, *buf, err = readRecord(rf, off, limit, *buf)
		if err == nil {
			s.oldestAt.Store(rec.at)
			return rec, spoolPos{seq: seg.seq, off: next, bytes: next - off}, true, nil
		}
		if !errors.Is(err, ErrSpoolCorrupt) {
			return rec, pos, false, err
		}
		// Damaged after it was checked (disk fault): skip the segment's rest.
		s.mu.Lock()
		s.log.Error("spool record corrupt during replay; the rest of its segment is skipped",
			"segment", s.segPath(seg.seq), "offset", off, "lost_records", seg.pending, "err", err)
		s.corrupt.Add(seg.good - off)
		s.records -= int64(seg.pending)
		seg.pending, seg.good = 0, off
		s.mu.Unlock()
	}
}

// commit marks the record before pos replayed, persists the cursor now and
// then, and deletes a segment once it is fully replayed.
func (s *spool) commit(pos spoolPos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0].seq != pos.seq {
		return nil
	}
	seg := s.segs[0]
	s.readOff = pos.off
	seg.pending--
	s.records--
	s.pendBytes -= pos.bytes
	s.uncommit++
	if s.records == 0 {
		s.oldestAt.Store(0)
	}
	if seg.pending == 0 && (s.w == nil || len(s.segs) > 1 || s.records == 0) {
		return s.dropHeadLocked()
	}
	if s.uncommit >= cursorEvery {
		return s.saveCursorLocked()
	}
	return nil
}

// dropHeadLocked deletes the fully replayed first segment (the writer's too, when
// everything is replayed: the next append starts a fresh segment).
func (s *spool) dropHeadLocked() error {
	seg := s.segs[0]
	if s.w != nil && len(s.segs) == 1 {
		if err := s.closeWriter(); err != nil {
			return err
		}
	}
	if s.rf != nil && s.rfSeq == seg.seq {
		s.rf.Close()
		s.rf = nil
	}
	s.segs = s.segs[1:]
	s.readOff = segHeaderLen
	// Persist the cursor past the segment before deleting it: a crash in between
	// leaves a segment the next open deletes.
	if err := s.saveCursorLocked(); err != nil {
		return err
	}
	if err := os.Remove(s.segPath(seg.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: delete replayed segment: %w", err)
	}
	s.disk -= seg.size
	s.full.Store(s.disk+spoolHeadroom > s.cfg.MaxBytes)
	return s.syncDir()
}

// saveCursorLocked writes the replay position to a temporary file and renames it
// over the cursor, so the cursor on disk is always whole.
func (s *spool) saveCursorLocked() error {
	seq, off := s.wseq, segHeaderLen
	if len(s.segs) > 0 {
		seq, off = s.segs[0].seq, s.readOff
	}
	s.uncommit = 0
	tmp := filepath.Join(s.cfg.Dir, cursorFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	_, err = f.Write(encodeCursor(seq, off))
	if err == nil && s.cfg.Fsync != FsyncNever {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.cfg.Dir, cursorFile))
	}
	if err != nil {
		return fmt.Errorf("spool cursor: %w", err)
	}
	return s.syncDir()
}

func (s *spool) syncDir() error {
	if s.cfg.Fsync == FsyncNever {
		return nil
	}
	d, err := os.Open(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: sync dir: %w", err)
	}
	return nil
}

// syncLoop is the "interval" policy: flush the segment being written when dirty.
func (s *spool) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(s.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.syncStop:
			return
		case <-t.C:
			if err := s.syncNow(); err != nil {
				s.log.Error("spool fsync failed", "dir", s.cfg.Dir, "err", err)
			}
		}
	}
}

// syncNow flushes outside the lock so appends never wait for the disk; a
// concurrent rotation may close the file first, after syncing it itself.
func (s *spool) syncNow() error {
	s.mu.Lock()
	w := s.w
	if w == nil || !s.dirty {
		s.mu.Unlock()
		return nil
	}
	s.dirty = false
	s.mu.Unlock()
	if err := w.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// isEmpty runs fn under the lock when nothing waits for replay, so no append can
// slip in between the check and fn.
func (s *spool) isEmpty(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records != 0 {
		return false
	}
	fn()
	return true
}

// spoolStats is a snapshot of the spool.
type spoolStats struct {
	bytes, pendingBytes, records, corrupt int64
	oldest                                time.Duration
}

func (s *spool) stats() spoolStats {
	s.mu.Lock()
	st := spoolStats{bytes: s.disk, pendingBytes: s.pendBytes, records: s.records, corrupt: s.corrupt.Load()}
	s.mu.Unlock()
	if at := s.oldestAt.Load(); at != 0 && st.records > 0 {
		st.oldest = max(0, s.clk.Now().Sub(time.Unix(0, at)))
	}
	return st
}

// close flushes the segment being written, persists the cursor and releases the
// lock. Records stay on disk for the next open.
func (s *spool) close() error {
	if s.syncStop != nil {
		close(s.syncStop)
		<-s.syncDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.w != nil {
		errs = append(errs, s.closeWriter())
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
	errs = append(errs, s.saveCursorLocked(), unlockDir(s.lock))
	return errors.Join(errs...)
}
