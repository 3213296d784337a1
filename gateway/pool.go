package gateway

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// Buffers reused across streamed answers. The CPU and allocation profiles of the
// gateway under load showed the 32 KiB reader of every stream as the largest
// single allocation (about a sixth of all bytes allocated).
const (
	streamReaderSize = 32 << 10
	// maxPooledCapture: larger capture buffers are left to the garbage collector.
	maxPooledCapture = 256 << 10
)

var (
	streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, streamReaderSize) }}
	captures      = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 4<<10)) }}
)

// getStreamReader returns a pooled reader of r; give it back with putStreamReader.
func getStreamReader(r io.Reader) *bufio.Reader {
	br := streamReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putStreamReader(br *bufio.Reader) {
	br.Reset(nil) // drop the body
	streamReaders.Put(br)
}

// getCapture returns an empty pooled buffer; nothing may keep its bytes after
// putCapture.
func getCapture() *bytes.Buffer {
	b := captures.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putCapture(b *bytes.Buffer) {
	if b.Cap() <= maxPooledCapture {
		captures.Put(b)
	}
}

// Constant header values shared by every answer and upstream request: net/http
// only reads them, and Header.Set would allocate a slice per header per request.
var (
	hdrJSON        = []string{"application/json"}
	hdrEventStream = []string{"text/event-stream"}
	hdrNoCache     = []string{"no-cache"}
	hdrNo          = []string{"no"}
)

// headerTraceparent is traceparent in canonical form; Set("traceparent", ...)
// allocates the canonical key on every call.
const headerTraceparent = "Traceparent"
