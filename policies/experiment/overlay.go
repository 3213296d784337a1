package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/stagegate/stagegate/policies"
)

// BuiltinPrefix marks a policy compiled into the binary: builtin:demo.
const BuiltinPrefix = "builtin:"

// TrialPolicy is where a trial's policy comes from: the root data overlays are
// laid over. Exactly one of FS and Dir is set.
type TrialPolicy struct {
	// FS is a fixed policy root (e.g. a built-in policy).
	FS fs.FS
	// Dir is a policy folder on disk, read when a variant is built.
	Dir string
	// Query is the decision rule (default policies.DefaultQuery).
	Query string
}

// Validate reports every problem at once.
func (p TrialPolicy) Validate() error {
	if (p.FS == nil) == (p.Dir == "") {
		return fmt.Errorf("%w: trial policy: set exactly one of FS and Dir", ErrConfig)
	}
	return nil
}

func (p TrialPolicy) root() fs.FS {
	if p.FS != nil {
		return p.FS
	}
	return policies.LoadDir(p.Dir)
}

// ResolveDir opens a policy folder reference: builtin:<name> or a folder on
// disk.
func ResolveDir(ref string) (fs.FS, error) {
	if name, ok := strings.CutPrefix(ref, BuiltinPrefix); ok {
		if name == "" || name == "lib" || strings.ContainsAny(name, "/.") {
			return nil, fmt.Errorf("%w: no built-in policy %q", ErrVariant, name)
		}
		sub, err := fs.Sub(policies.Builtin(), "rego/"+name)
		if err != nil {
			return nil, fmt.Errorf("%w: built-in policy %q: %w", ErrVariant, name, err)
		}
		if _, err := fs.Stat(sub, "."); err != nil {
			return nil, fmt.Errorf("%w: no built-in policy %q", ErrVariant, name)
		}
		return sub, nil
	}
	st, err := os.Stat(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: policy folder: %w", ErrVariant, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: policy %s is not a folder", ErrVariant, ref)
	}
	return policies.LoadDir(ref), nil
}

// BuildVariant compiles the policy of a variant arm: its own folder, or the
// trial's policy with the data overlay merged in. Only compilation is
// required here; the manager runs the policy's tests when the experiment is
// applied and reports them.
func BuildVariant(ctx context.Context, tp TrialPolicy, v *Variant, memoEntries int) (*policies.Engine, error) {
	fsys, err := VariantFS(tp, v)
	if err != nil {
		return nil, err
	}
	e, err := policies.New(ctx, policies.Config{FS: fsys, Query: tp.Query, MemoEntries: memoEntries})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVariant, err)
	}
	return e, nil
}

// VariantFS is the policy root of a variant.
func VariantFS(tp TrialPolicy, v *Variant) (fs.FS, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no variant", ErrVariant)
	}
	if v.Dir != "" {
		return ResolveDir(v.Dir)
	}
	if err := tp.Validate(); err != nil {
		return nil, err
	}
	return overlayFS(tp.root(), v.Data)
}

// overlayFS copies the policy files of base into memory and merges overlay (a
// document rooted at data) over its data files: each data file takes the part
// of the overlay under its folder (deepest folders first); what remains goes
// into the root data.json. A value in the overlay replaces the same key in
// the policy's data; objects merge key by key. Files the overlay does not
// touch keep their bytes, so an empty overlay is the base policy itself (the
// same revision).
func overlayFS(base fs.FS, overlay map[string]any) (fs.FS, error) {
	ov, err := cloneJSON(overlay)
	if err != nil {
		return nil, fmt.Errorf("%w: data overlay: %w", ErrVariant, err)
	}
	out := fstest.MapFS{}
	var dataFiles []string
	var total int64
	err = fs.WalkDir(base, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if d.IsDir() || strings.HasSuffix(name, "_test.rego") || !(strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, ".json")) {
			return nil
		}
		if len(out) >= policies.MaxPolicyFiles {
			return fmt.Errorf("more than %d policy files", policies.MaxPolicyFiles)
		}
		src, err := readBounded(base, p)
		if err != nil {
			return err
		}
		if total += int64(len(src)); total > policies.MaxPolicyTotalBytes {
			return fmt.Errorf("policy files exceed %d bytes", policies.MaxPolicyTotalBytes)
		}
		out[p] = &fstest.MapFile{Data: src, Mode: 0o444}
		if strings.HasSuffix(name, ".json") {
			dataFiles = append(dataFiles, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: trial policy: %w", ErrVariant, err)
	}
	if len(ov) == 0 {
		return out, nil
	}
	// Deepest folders first, so a folder's file takes its part before a
	// file above it could.
	slices.SortStableFunc(dataFiles, func(a, b string) int { return folderDepth(b) - folderDepth(a) })
	rootFile := ""
	for _, p := range dataFiles {
		dir := path.Dir(p)
		if dir == "." && rootFile == "" && path.Base(p) == "data.json" {
			rootFile = p
		}
		part, ok := takeSubtree(ov, dir)
		if !ok {
			continue
		}
		doc, err := decodeObject(out[p].Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVariant, p, err)
		}
		mergeInto(doc, part)
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVariant, p, err)
		}
		out[p] = &fstest.MapFile{Data: raw, Mode: 0o444}
	}
	if len(ov) > 0 {
		if rootFile == "" {
			rootFile = "data.json"
			out[rootFile] = &fstest.MapFile{Data: []byte("{}"), Mode: 0o444}
		}
		doc, err := decodeObject(out[rootFile].Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVariant, rootFile, err)
		}
		mergeInto(doc, ov)
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVariant, rootFile, err)
		}
		out[rootFile] = &fstest.MapFile{Data: raw, Mode: 0o444}
	}
	return out, nil
}

// folderDepth is 0 for a file at the root, 1 in a/, 2 in a/b/.
func folderDepth(p string) int {
	dir := path.Dir(p)
	if dir == "." {
		return 0
	}
	return strings.Count(dir, "/") + 1
}

// takeSubtree removes and returns the object under folder dir ("a/b" → key a,
// then b) of ov; "." takes all of it.
func takeSubtree(ov map[string]any, dir string) (map[string]any, bool) {
	if dir == "." {
		if len(ov) == 0 {
			return nil, false
		}
		all := map[string]any{}
		for k, v := range ov {
			all[k] = v
			delete(ov, k)
		}
		return all, true
	}
	segs := strings.Split(dir, "/")
	parent := ov
	for _, s := range segs[:len(segs)-1] {
		next, ok := parent[s].(map[string]any)
		if !ok {
			return nil, false
		}
		parent = next
	}
	last := segs[len(segs)-1]
	sub, ok := parent[last].(map[string]any)
	if !ok {
		return nil, false
	}
	delete(parent, last)
	return sub, true
}

// mergeInto merges src over dst: objects merge key by key, anything else in
// src replaces what dst holds.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// cloneJSON deep-copies an overlay through JSON, so it is never shared and
// its numbers are json.Number as the policy loader reads them.
func cloneJSON(m map[string]any) (map[string]any, error) {
	if len(m) == 0 {
		return map[string]any{}, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return decodeObject(raw)
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	return doc, nil
}

func readBounded(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, policies.MaxPolicyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(src) > policies.MaxPolicyFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, policies.MaxPolicyFileBytes)
	}
	return src, nil
}
