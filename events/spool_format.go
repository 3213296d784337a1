package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/nats-io/nats.go"
)

// On-disk format of the spool (all integers little-endian).
//
//	segment := magic[8] record*
//	record  := length u32 | crc u32 | body[length]
//	crc     := CRC-32C (Castagnoli) over the 4 length bytes and the body
//	body    := version u8 (=1) | spooled-at i64 (Unix ns)
//	           | uvarint len, msg id | uvarint len, subject
//	           | uvarint count, { uvarint len, key | uvarint len, value }*
//	           | data (the rest of the body)
//
//	cursor  := magic[8] | segment u64 | offset i64 | crc u32 (CRC-32C of the 24 bytes before it)
//
// A record is written with one write(2), so a process crash leaves either whole
// records or a torn tail, which the length and the checksum expose.
const (
	segMagic        = "SGSPOOL1"
	cursorMagic     = "SGCURSR1"
	segHeaderLen    = int64(len(segMagic))
	recHeaderLen    = 8
	recVersion      = 1
	cursorLen       = 8 + 8 + 8 + 4
	maxSpoolIDLen   = 256
	maxSpoolSubject = 512
	maxSpoolHeaders = 32
	maxSpoolHdrKey  = 256
	maxSpoolHdrVal  = 4096
	// minRecordBody is a version, a time, an id and a subject of one byte each,
	// and a header count.
	minRecordBody = 1 + 8 + 2 + 2 + 1
)

// MaxSpoolRecordBytes bounds one spooled record: the largest payload plus room
// for its subject and headers. A length field above it marks a corrupt record.
const MaxSpoolRecordBytes = MaxPayloadBytes + 64<<10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// spoolRecord is one message waiting in the spool. Decoded records alias the read
// buffer, except for the strings.
type spoolRecord struct {
	at      int64 // Unix ns when spooled
	id      string
	subject string
	header  nats.Header
	data    []byte
}

// msg rebuilds the NATS message; Data aliases the record.
func (r *spoolRecord) msg() *nats.Msg {
	return &nats.Msg{Subject: r.subject, Header: r.header, Data: r.data}
}

// appendRecord encodes a whole record (length, checksum, body) onto dst.
func appendRecord(dst []byte, at int64, id string, msg *nats.Msg) ([]byte, error) {
	switch {
	case id == "" || len(id) > maxSpoolIDLen:
		return dst, fmt.Errorf("%w: spool record id of %d bytes", ErrPayload, len(id))
	case msg.Subject == "" || len(msg.Subject) > maxSpoolSubject:
		return dst, fmt.Errorf("%w: spool record subject of %d bytes", ErrPayload, len(msg.Subject))
	}
	nh := 0
	for k, vs := range msg.Header {
		if len(k) == 0 || len(k) > maxSpoolHdrKey {
			return dst, fmt.Errorf("%w: spool record header key of %d bytes", ErrPayload, len(k))
		}
		for _, v := range vs {
			if len(v) > maxSpoolHdrVal {
				return dst, fmt.Errorf("%w: spool record header %s of %d bytes", ErrPayload, k, len(v))
			}
			nh++
		}
	}
	if nh > maxSpoolHeaders {
		return dst, fmt.Errorf("%w: spool record with %d headers", ErrPayload, nh)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // length and checksum, filled in below
	dst = append(dst, recVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	dst = appendString(dst, id)
	dst = appendString(dst, msg.Subject)
	dst = binary.AppendUvarint(dst, uint64(nh))
	for k, vs := range msg.Header {
		for _, v := range vs {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
	}
	dst = append(dst, msg.Data...)
	n := len(dst) - start - recHeaderLen
	if n > MaxSpoolRecordBytes {
		return dst[:start], fmt.Errorf("spool record of %d bytes: %w", n, ErrPayloadTooLarge)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	crc := crc32.Update(0, castagnoli, dst[start:start+4])
	crc = crc32.Update(crc, castagnoli, dst[start+recHeaderLen:])
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// errCleanEnd is readRecord's answer at the exact end of the data.
var errCleanEnd = io.EOF

// readRecord reads the record at off, whose data must end by limit. It returns
// the record, the offset after it and the (possibly grown) buffer; errCleanEnd
// when off == limit, an ErrSpoolCorrupt error for a torn, oversized or damaged
// record, or the reader's error.
func readRecord(r io.ReaderAt, off, limit int64, buf []byte) (spoolRecord, int64, []byte, error) {
	if off == limit {
		return spoolRecord{}, off, buf, errCleanEnd
	}
	if limit-off < recHeaderLen {
		return spoolRecord{}, off, buf, fmt.Errorf("%w: torn record header at offset %d", ErrSpoolCorrupt, off)
	}
	var hdr [recHeaderLen]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return spoolRecord{}, off, buf, readErr(err, off)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:4]))
	if n < minRecordBody || n > MaxSpoolRecordBytes {
		return spoolRecord{}, off, buf, fmt.Errorf("%w: record length %d at offset %d", ErrSpoolCorrupt, n, off)
	}
	if limit-off-recHeaderLen < n {
		return spoolRecord{}, off, buf, fmt.Errorf("%w: torn record at offset %d (%d of %d bytes)", ErrSpoolCorrupt, off, limit-off-recHeaderLen, n)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := r.ReadAt(buf, off+recHeaderLen); err != nil {
		return spoolRecord{}, off, buf, readErr(err, off)
	}
	crc := crc32.Update(0, castagnoli, hdr[:4])
	if crc32.Update(crc, castagnoli, buf) != binary.LittleEndian.Uint32(hdr[4:]) {
		return spoolRecord{}, off, buf, fmt.Errorf("%w: checksum mismatch at offset %d", ErrSpoolCorrupt, off)
	}
	rec, err := decodeBody(buf)
	if err != nil {
		return spoolRecord{}, off, buf, fmt.Errorf("%w: record at offset %d: %v", ErrSpoolCorrupt, off, err)
	}
	return rec, off + recHeaderLen + n, buf, nil
}

func readErr(err error, off int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: file ends inside the record at offset %d", ErrSpoolCorrupt, off)
	}
	return fmt.Errorf("read spool at offset %d: %w", off, err)
}

// decodeBody parses a checksummed body. The checksum makes damage unlikely, so
// these checks guard against a writer bug or a forged file, never trusting a length.
func decodeBody(b []byte) (spoolRecord, error) {
	var rec spoolRecord
	if len(b) < minRecordBody || b[0] != recVersion {
		return rec, errors.New("unknown record version")
	}
	rec.at = int64(binary.LittleEndian.Uint64(b[1:9]))
	b = b[9:]
	var err error
	if rec.id, b, err = takeString(b, maxSpoolIDLen, "id"); err != nil {
		return rec, err
	}
	if rec.subject, b, err = takeString(b, maxSpoolSubject, "subject"); err != nil {
		return rec, err
	}
	if rec.id == "" || rec.subject == "" {
		return rec, errors.New("empty id or subject")
	}
	nh, k := binary.Uvarint(b)
	if k <= 0 || nh > maxSpoolHeaders {
		return rec, errors.New("bad header count")
	}
	b = b[k:]
	if nh > 0 {
		rec.header = make(nats.Header, nh)
	}
	for range nh {
		var key, val string
		if key, b, err = takeString(b, maxSpoolHdrKey, "header key"); err != nil {
			return rec, err
		}
		if key == "" {
			return rec, errors.New("empty header key")
		}
		if val, b, err = takeString(b, maxSpoolHdrVal, "header value"); err != nil {
			return rec, err
		}
		rec.header[key] = append(rec.header[key], val)
	}
	rec.data = b
	return rec, nil
}

func takeString(b []byte, limit int, what string) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(limit) || n > uint64(len(b)-k) {
		return "", b, fmt.Errorf("bad %s length", what)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// scanSegment checks the magic and walks the records from off (at least the end
// of the magic) to size, calling fn for each good one with its offset and the
// offset after it. It returns the offset after the last good record and nil when
// the segment ends cleanly, or an ErrSpoolCorrupt error at the first bad record
// (or a read error). Records passed to fn alias buf and are valid only during fn.
func scanSegment(r io.ReaderAt, size, off int64, fn func(rec *spoolRecord, off, next int64)) (int64, error) {
	if size < segHeaderLen {
		return 0, fmt.Errorf("%w: segment of %d bytes has no header", ErrSpoolCorrupt, size)
	}
	var magic [segHeaderLen]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return 0, readErr(err, 0)
	}
	if string(magic[:]) != segMagic {
		return 0, fmt.Errorf("%w: not a spool segment (bad magic)", ErrSpoolCorrupt)
	}
	if off < segHeaderLen {
		off = segHeaderLen
	}
	if off > size {
		return size, fmt.Errorf("%w: offset %d past the segment end %d", ErrSpoolCorrupt, off, size)
	}
	var buf []byte
	for {
		rec, next, b, err := readRecord(r, off, size, buf)
		buf = b
		if errors.Is(err, errCleanEnd) {
			return off, nil
		}
		if err != nil {
			return off, err
		}
		if fn != nil {
			fn(&rec, off, next)
		}
		off = next
	}
}

// encodeCursor and decodeCursor persist the replay position.
func encodeCursor(seg uint64, off int64) []byte {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint64(b, seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(off))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCursor(b []byte) (uint64, int64, error) {
	if len(b) != cursorLen || string(b[:8]) != cursorMagic {
		return 0, 0, fmt.Errorf("%w: cursor of %d bytes or bad magic", ErrSpoolCorrupt, len(b))
	}
	if crc32.Checksum(b[:cursorLen-4], castagnoli) != binary.LittleEndian.Uint32(b[cursorLen-4:]) {
		return 0, 0, fmt.Errorf("%w: cursor checksum mismatch", ErrSpoolCorrupt)
	}
	seg := binary.LittleEndian.Uint64(b[8:16])
	off := int64(binary.LittleEndian.Uint64(b[16:24]))
	if off < segHeaderLen {
		return 0, 0, fmt.Errorf("%w: cursor offset %d", ErrSpoolCorrupt, off)
	}
	return seg, off, nil
}
