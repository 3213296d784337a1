package offline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/internal/clock"
	"github.com/stagegate/stagegate/monitors"
)

// Defaults and bounds of Config.
const (
	// DefaultMaxLineBytes bounds one input line.
	DefaultMaxLineBytes = 1 << 20
	// MaxLineBytesLimit bounds Config.MaxLineBytes.
	MaxLineBytesLimit = events.MaxPayloadBytes
	// maxIDBytes bounds the id field.
	maxIDBytes = 512
	// maxReportedErrors: after this many bad lines only a count is kept.
	maxReportedErrors = 100
)

// Config tunes a Scanner. Zero values take the defaults.
type Config struct {
	// MaxLineBytes bounds one input line (without its newline). Longer lines are
	// rejected. Default DefaultMaxLineBytes.
	MaxLineBytes int
	// Timings adds "timings_us" to every output line: the time each detector
	// took, and "total", in microseconds.
	Timings bool
}

func (c Config) withDefaults() Config {
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxLineBytes < 1 || c.MaxLineBytes > MaxLineBytesLimit {
		return fmt.Errorf("%w: max line bytes %d not in [1,%d]", ErrConfig, c.MaxLineBytes, MaxLineBytesLimit)
	}
	return nil
}

// Scanner runs detectors over JSON lines. It is not safe for concurrent use.
type Scanner struct {
	cfg  Config
	dets []monitors.Detector
	clk  clock.Clock
}

// New validates cfg and returns a scanner over dets. A nil clk is the wall
// clock (used only for timings).
func New(cfg Config, dets []monitors.Detector, clk clock.Clock) (*Scanner, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(dets) == 0 {
		errs = append(errs, fmt.Errorf("%w: no detectors", ErrConfig))
	}
	for i, d := range dets {
		if d == nil {
			errs = append(errs, fmt.Errorf("%w: detector %d is nil", ErrConfig, i))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Scanner{cfg: cfg.withDefaults(), dets: dets, clk: clock.OrReal(clk)}, nil
}

// Input is one input line.
type Input struct {
	ID       json.RawMessage `json:"id"`
	Prompt   *string         `json:"prompt"`
	Response *string         `json:"response"`
}

// Span is one evidence span of an output line.
type Span struct {
	Field string `json:"field"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Kind  string `json:"kind,omitempty"`
}

// Finding is one finding of an output line.
type Finding struct {
	Detector    string  `json:"detector"`
	Category    string  `json:"category"`
	Severity    string  `json:"severity"`
	Score       float64 `json:"score"`
	Spans       []Span  `json:"spans"`
	Explanation string  `json:"explanation"`
}

// Output is one output line.
type Output struct {
	ID       json.RawMessage    `json:"id"`
	Findings []Finding          `json:"findings"`
	Timings  map[string]float64 `json:"timings_us,omitempty"`
}

// Source is one named input.
type Source struct {
	// Name is used in error messages ("-" for standard input).
	Name string
	R    io.Reader
}

// LineError is one rejected line.
type LineError struct {
	Source string
	Line   int
	Err    error
}

func (e *LineError) Error() string {
	return e.Source + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}
func (e *LineError) Unwrap() error { return e.Err }

// Stats summarise a Run.
type Stats struct {
	// Lines read (not counting blank lines), Scanned successfully, Rejected.
	Lines, Scanned, Rejected int
}

// Run scans every source in order, writing one output line per good input line
// to out and one message per bad line to errs. It returns ErrBadLines when any
// line was rejected, or the first read, write or context error.
func (s *Scanner) Run(ctx context.Context, srcs []Source, out, errs io.Writer) (Stats, error) {
	var st Stats
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, src := range srcs {
		if err := s.runOne(ctx, src, enc, errs, &st); err != nil {
			_ = w.Flush()
			return st, err
		}
	}
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("write output: %w", err)
	}
	if st.Rejected > 0 {
		return st, fmt.Errorf("%w: %d of %d", ErrBadLines, st.Rejected, st.Lines)
	}
	return st, nil
}

func (s *Scanner) runOne(ctx context.Context, src Source, enc *json.Encoder, errs io.Writer, st *Stats) error {
	r := bufio.NewReaderSize(src.R, 64<<10)
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := readLine(r, buf[:0], s.cfg.MaxLineBytes)
		buf = line
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", src.Name, err)
		}
		eof := errors.Is(err, io.EOF)
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 || tooLong {
			st.Lines++
			var lerr error
			if tooLong {
				lerr = fmt.Errorf("line longer than %d bytes", s.cfg.MaxLineBytes)
			} else {
				lerr = s.scanLine(ctx, trimmed, src.Name, lineNo, enc)
			}
			if lerr != nil {
				var le *LineError
				if !errors.As(lerr, &le) {
					if errors.Is(lerr, errWrite) || ctx.Err() != nil {
						return lerr
					}
					le = &LineError{Source: src.Name, Line: lineNo, Err: lerr}
				}
				st.Rejected++
				if st.Rejected <= maxReportedErrors {
					fmt.Fprintln(errs, le.Error())
				} else if st.Rejected == maxReportedErrors+1 {
					fmt.Fprintln(errs, "further line errors are counted but not shown")
				}
			} else {
				st.Scanned++
			}
		}
		if eof {
			return nil
		}
	}
}

// errWrite marks output errors, which end the run.
var errWrite = errors.New("write output")

// readLine reads one line into buf (without the newline). A line longer than
// max is consumed and reported with tooLong; its content is dropped.
func readLine(r *bufio.Reader, buf []byte, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > max+2 { // room for "\r\n"
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimRight(buf, "\r\n")
		if !tooLong && len(buf) > max {
			tooLong, buf = true, buf[:0]
		}
		return buf, tooLong, err
	}
}

// scanLine decodes, scans and writes one line.
func (s *Scanner) scanLine(ctx context.Context, line []byte, name string, lineNo int, enc *json.Encoder) error {
	in, err := DecodeInput(line)
	if err != nil {
		return err
	}
	id := in.ID
	if id == nil {
		id = json.RawMessage(strconv.Quote(name + ":" + strconv.Itoa(lineNo)))
	}
	ix := &events.Interaction{
		Schema: events.SchemaInteraction, ID: string(id), Trial: "scan", Status: events.StatusOK,
		Request:  events.Request{Messages: []events.Message{{Role: "user", Content: deref(in.Prompt)}}},
		Response: events.Response{Content: deref(in.Response)},
	}
	out := Output{ID: id, Findings: []Finding{}}
	if s.cfg.Timings {
		out.Timings = make(map[string]float64, len(s.dets)+1)
	}
	t0 := s.clk.Now()
	for _, d := range s.dets {
		t := s.clk.Now()
		fs, err := runDetector(ctx, d, ix)
		if s.cfg.Timings {
			out.Timings[d.Name()] = micros(s.clk.Now().Sub(t))
		}
		if err != nil {
			return fmt.Errorf("detector %s: %w", d.Name(), err)
		}
		for _, f := range fs {
			out.Findings = append(out.Findings, convert(d.Name(), f))
		}
	}
	if s.cfg.Timings {
		out.Timings["total"] = micros(s.clk.Now().Sub(t0))
	}
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

// DecodeInput parses and validates one input line.
func DecodeInput(line []byte) (*Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("not a JSON object with prompt/response: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	if string(in.ID) == "null" {
		in.ID = nil
	}
	var errs []error
	if in.Prompt == nil && in.Response == nil {
		errs = append(errs, errors.New(`neither "prompt" nor "response" is set`))
	}
	if in.ID != nil {
		switch {
		case len(in.ID) > maxIDBytes:
			errs = append(errs, fmt.Errorf(`"id" longer than %d bytes`, maxIDBytes))
		case in.ID[0] != '"' && (in.ID[0] < '0' || in.ID[0] > '9') && in.ID[0] != '-':
			errs = append(errs, errors.New(`"id" must be a string or a number`))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &in, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// convert keeps the fields of the scan output.
func convert(name string, f events.Finding) Finding {
	out := Finding{
		Detector: name, Category: f.Category, Severity: f.Severity, Score: f.Score,
		Spans: make([]Span, len(f.Spans)), Explanation: f.Explanation,
	}
	for i, sp := range f.Spans {
		out.Spans[i] = Span{Field: sp.Field, Start: sp.Start, End: sp.End, Kind: sp.Kind}
	}
	return out
}

// runDetector calls d.Detect, turning a panic into an error.
func runDetector(ctx context.Context, d monitors.Detector, in *events.Interaction) (fs []events.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			fs, err = nil, fmt.Errorf("%w: %v", monitors.ErrDetectorPanic, p)
		}
	}()
	return d.Detect(ctx, in)
}

// micros renders d in microseconds with 0.1 µs resolution.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()/100) / 10 }
