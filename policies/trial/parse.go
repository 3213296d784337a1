package trial

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxBytes bounds a trial definition.
const MaxBytes = 1 << 20

// maxDepth bounds nesting (and alias chains) in a trial definition.
const maxDepth = 16

// Problem is one thing wrong with a trial definition.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`            // 0 when unknown
	Field   string `json:"field,omitempty"` // dotted path, e.g. caps.tokens_per_request
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error lists every problem of a definition, in file order. It wraps ErrInvalid.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return ErrInvalid.Error() + ":\n" + strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Load reads and parses a trial definition file.
func Load(path string) (*Trial, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	t, err := Parse(path, src)
	return t, src, err
}

// Parse decodes and validates a trial definition; name is the file name used in
// messages. Unknown fields, values of the wrong type and broken rules are all
// reported at once in an *Error, each with its line and field.
func Parse(name string, src []byte) (*Trial, error) {
	fail := func(line int, field, format string, args ...any) (*Trial, error) {
		return nil, &Error{Problems: []Problem{{File: name, Line: line, Field: field, Message: fmt.Sprintf(format, args...)}}}
	}
	if len(src) > MaxBytes {
		return fail(0, "", "larger than %d bytes", MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, "", "empty: a trial definition is a YAML mapping (see README.md, For regulators)")
		}
		return fail(yamlErrorLine(err), "", "%s", yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail(extra.Line, "", "holds more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return fail(0, "", "empty: a trial definition is a YAML mapping")
	}
	w := &walker{name: name, lines: map[string]int{}}
	root := doc.Content[0]
	w.walk(root, reflect.TypeFor[Trial](), "", 0)
	var t Trial
	if len(w.problems) == 0 {
		strict := yaml.NewDecoder(bytes.NewReader(src))
		strict.KnownFields(true)
		if err := strict.Decode(&t); err != nil {
			// The walk above checks what this decode checks; keep the message anyway.
			return fail(yamlErrorLine(err), "", "%s", yamlMessage(err))
		}
	} else if root.Kind == yaml.MappingNode {
		// Decode what can be decoded (yaml skips values of the wrong type), so
		// the rules below are checked too and every problem is reported at once.
		_ = root.Decode(&t)
	}
	t = t.WithDefaults()
	found := w.problems
	for _, p := range t.check() {
		if len(found) > 0 && related(found, p.path) {
			continue // the field's own problem is already reported
		}
		w.problems = append(w.problems, Problem{File: name, Line: w.lineOf(p.path, root.Line), Field: p.path, Message: p.msg})
	}
	if len(w.problems) > 0 {
		return nil, w.err()
	}
	return &t, nil
}

// related reports whether a problem was already found at path, above it or
// below it.
func related(found []Problem, path string) bool {
	for _, f := range found {
		if f.Field == "" || f.Field == path || strings.HasPrefix(path, f.Field+".") || strings.HasPrefix(path, f.Field+"[") ||
			strings.HasPrefix(f.Field, path+".") || strings.HasPrefix(f.Field, path+"[") {
			return true
		}
	}
	return false
}

// yamlErrorLine finds "line N" in a yaml error, or 0.
func yamlErrorLine(err error) int {
	var n int
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		_, _ = fmt.Sscanf(s[i:], "line %d", &n)
	}
	return n
}

// yamlMessage is a yaml error without its "yaml: line N:" prefix.
func yamlMessage(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(s, "line ") {
		if _, rest, ok := strings.Cut(s, ": "); ok {
			return rest
		}
	}
	return s
}

// walker checks a YAML node tree against a Go type: unknown fields, duplicate
// keys, and values of the wrong kind, each with its line and field path. It
// records the line of every field path for later messages.
type walker struct {
	name     string
	problems []Problem
	lines    map[string]int
}

func (w *walker) add(n *yaml.Node, path, format string, args ...any) {
	w.problems = append(w.problems, Problem{File: w.name, Line: n.Line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) err() error {
	slices.SortStableFunc(w.problems, func(a, b Problem) int { return a.Line - b.Line })
	return &Error{Problems: w.problems}
}

// lineOf is the line of path, or of its nearest parent that has one.
func (w *walker) lineOf(path string, fallback int) int {
	for p := path; p != ""; {
		if l, ok := w.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fallback
}

var timeType = reflect.TypeFor[time.Time]()

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		w.add(n, path, "nested deeper than %d", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		w.walk(n.Alias, t, path, depth+1)
		return
	}
	if path != "" {
		if _, ok := w.lines[path]; !ok {
			w.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: the zero value
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		var tm time.Time
		if n.Kind != yaml.ScalarNode || n.Decode(&tm) != nil {
			w.add(n, path, "%s is not a time: use RFC 3339, e.g. 2025-06-01T00:00:00Z", describe(n))
		}
	case t.Kind() == reflect.Struct:
		w.walkStruct(n, t, path, depth)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "%s: want a mapping", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.add(k, path, "keys must be plain strings")
				continue
			}
			if seen[k.Value] {
				w.add(k, join(path, k.Value), "defined twice")
				continue
			}
			seen[k.Value] = true
			w.lines[join(path, k.Value)] = k.Line
			w.walk(v, t.Elem(), join(path, k.Value), depth+1)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n, path, "%s: want a list", describe(n))
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.add(n, path, "%s: want %s", describe(n), kindName(t))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil || t.Kind() == reflect.String && !plainStringOK(n) {
			w.add(n, path, "%s: want %s", describe(n), kindName(t))
		}
	}
}

// plainStringOK refuses, for a string field, a scalar YAML reads as something
// else (an unquoted number, bool or date): quoting it says what was meant.
func plainStringOK(n *yaml.Node) bool {
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool", "!!timestamp":
		return false
	}
	return true
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		w.add(n, path, "%s: want a mapping", describe(n))
		return
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = f.Type
		known = append(known, tag)
	}
	slices.Sort(known)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		switch {
		case !ok:
			w.add(k, join(path, k.Value), "unknown field (known here: %s)", strings.Join(known, ", "))
		case seen[k.Value]:
			w.add(k, join(path, k.Value), "defined twice")
		default:
			seen[k.Value] = true
			w.lines[join(path, k.Value)] = k.Line
			w.walk(v, ft, join(path, k.Value), depth+1)
		}
	}
}

// describe shows a node briefly in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "this value"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string (quote it)"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return t.String()
}
