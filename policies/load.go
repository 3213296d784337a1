package policies

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Bounds on a policy folder. Policy files are outside input: a folder over these
// bounds is refused with ErrCompile rather than read into memory.
const (
	// MaxPolicyFileBytes bounds one *.rego or *.json file.
	MaxPolicyFileBytes = 1 << 20
	// MaxPolicyTotalBytes bounds all policy files of one folder together.
	MaxPolicyTotalBytes = 16 << 20
	// MaxPolicyFiles bounds the number of *.rego and *.json files in one folder.
	MaxPolicyFiles = 1000
)

// DemoPolicy is the folder of the demo trial policy inside Builtin():
// fs.Sub(Builtin(), DemoPolicy) is a policy root for Config.FS.
const DemoPolicy = "rego/demo"

// StandardPolicy is the folder of the standard trial policy inside Builtin(): the
// rule library composed by data (rego/standard/data.json), every rule switched on.
const StandardPolicy = "rego/standard"

// LibraryPolicy is the folder of the rule library inside Builtin(). Its modules
// (packages stagegate.lib and stagegate.lib.*) are mounted into any policy root
// that refers to data.stagegate.lib and does not define those packages itself
// (a root may vendor a copy to pin it). Mounted files count toward the revision
// under the path prefix LibraryMount.
const LibraryPolicy = "rego/lib"

// LibraryMount prefixes the paths of mounted library modules in errors and in
// the revision hash.
const LibraryMount = "builtin/lib/"

// libraryRef is the document the library's packages live under.
var libraryRef = ast.MustParseRef("data.stagegate.lib")

//go:embed rego
var builtinFS embed.FS

// Builtin returns the policies compiled into the binary: the rego/ folder of this
// package (one policy root per sub-folder, e.g. DemoPolicy). It works from any
// working directory.
func Builtin() fs.FS { return builtinFS }

// LoadDir returns the policy folder dir on disk as an fs.FS for Config.FS.
func LoadDir(dir string) fs.FS { return os.DirFS(dir) }

// policyFiles is one loaded, parsed policy root.
type policyFiles struct {
	modules  map[string]*ast.Module // decision modules, by path
	tests    map[string]*ast.Module // *_test.rego modules (only when asked for)
	data     map[string]any         // the base document, laid out as OPA lays out data files
	revision string                 // content hash of modules and data files
}

// nondeterministicCode is the ast error code for a call to a builtin that would
// make decisions depend on something other than input and data.
const nondeterministicCode = "stagegate_nondeterministic_builtin"

// loadPolicy reads every *.rego and *.json file under fsys (hidden files and
// folders skipped, other files ignored), parses the modules as Rego v1 and lays
// out the data files: a JSON object in folder a/b becomes data.a.b, as OPA's
// loader does. *_test.rego files are parsed only when withTests is set and never
// count toward the revision. All problems are reported at once, wrapped in
// ErrCompile, each naming its file (and line for Rego).
func loadPolicy(fsys fs.FS, withTests bool) (*policyFiles, error) {
	pf := &policyFiles{
		modules: map[string]*ast.Module{},
		tests:   map[string]*ast.Module{},
		data:    map[string]any{},
	}
	var (
		errs  []error
		files int
		total int64
		hash  = sha256.New()
	)
	walkErr := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if p != "." && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		isRego := strings.HasSuffix(name, ".rego")
		isTest := strings.HasSuffix(name, "_test.rego")
		isJSON := strings.HasSuffix(name, ".json")
		if !isRego && !isJSON || isTest && !withTests {
			return nil
		}
		if files++; files > MaxPolicyFiles {
			return fmt.Errorf("more than %d policy files", MaxPolicyFiles)
		}
		src, err := readBounded(fsys, p)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if total += int64(len(src)); total > MaxPolicyTotalBytes {
			return fmt.Errorf("policy files exceed %d bytes in total", MaxPolicyTotalBytes)
		}
		if !isTest {
			// Length-prefixed path and content: no two different folders hash alike.
			hash.Write([]byte(p + "\x00" + strconv.Itoa(len(src)) + "\x00"))
			hash.Write(src)
		}
		switch {
		case isRego:
			m, err := parseModule(p, src)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if isTest {
				pf.tests[p] = m
			} else {
				pf.modules[p] = m
			}
		case isJSON:
			if err := mergeDataFile(pf.data, p, src); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if len(errs) == 0 && len(pf.modules) == 0 {
		errs = append(errs, errors.New("no policy modules (*.rego) found"))
	}
	if len(errs) == 0 && usesLibrary(pf) && !definesLibrary(pf) {
		if err := mountLibrary(pf, hash); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrCompile, errors.Join(errs...))
	}
	pf.revision = "sha256:" + hex.EncodeToString(hash.Sum(nil))[:16]
	return pf, nil
}

// usesLibrary reports whether a module or test of pf refers to
// data.stagegate.lib: by importing it (or a document below it), by a full
// reference, or through an import of data.stagegate (stagegate.lib.x).
func usesLibrary(pf *policyFiles) bool {
	uses := false
	check := func(m *ast.Module) {
		// Names under which an import of a document above the library makes
		// it reachable, with the rest of the path to it: import data.stagegate
		// gives stagegate → [lib].
		above := map[ast.Var]ast.Ref{}
		for _, imp := range m.Imports {
			r, ok := imp.Path.Value.(ast.Ref)
			if !ok {
				continue
			}
			if r.HasPrefix(libraryRef) {
				uses = true
				return
			}
			if libraryRef.HasPrefix(r) && len(r) > 1 {
				name := imp.Alias
				if name == "" {
					if s, ok := r[len(r)-1].Value.(ast.String); ok {
						name = ast.Var(s)
					}
				}
				above[name] = libraryRef[len(r):]
			}
		}
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if r.HasPrefix(libraryRef) {
				uses = true
			}
			if v, ok := r[0].Value.(ast.Var); ok && !uses {
				if rest, ok := above[v]; ok && len(r) > len(rest) && r[1:len(rest)+1].Equal(rest) {
					uses = true
				}
			}
			return uses
		})
	}
	for _, m := range pf.modules {
		if check(m); uses {
			return true
		}
	}
	for _, m := range pf.tests {
		if check(m); uses {
			return true
		}
	}
	return false
}

// definesLibrary reports whether pf has its own stagegate.lib packages.
func definesLibrary(pf *policyFiles) bool {
	for _, m := range pf.modules {
		if m.Package.Path.HasPrefix(libraryRef) {
			return true
		}
	}
	return false
}

// mountLibrary adds the built-in library modules (not its tests) to pf and to
// the revision hash.
func mountLibrary(pf *policyFiles, h hash.Hash) error {
	entries, err := fs.ReadDir(builtinFS, LibraryPolicy)
	if err != nil {
		return fmt.Errorf("built-in library: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		src, err := fs.ReadFile(builtinFS, LibraryPolicy+"/"+name)
		if err != nil {
			return fmt.Errorf("built-in library: %w", err)
		}
		p := LibraryMount + name
		h.Write([]byte(p + "\x00" + strconv.Itoa(len(src)) + "\x00"))
		h.Write(src)
		m, err := parseModule(p, src)
		if err != nil {
			return err
		}
		pf.modules[p] = m
	}
	return nil
}

// readBounded reads one policy file, refusing it when larger than MaxPolicyFileBytes.
func readBounded(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxPolicyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(src) > MaxPolicyFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, MaxPolicyFileBytes)
	}
	return src, nil
}

// parseModule parses one Rego v1 module and refuses nondeterministic builtins.
func parseModule(p string, src []byte) (*ast.Module, error) {
	m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{
		RegoVersion:       ast.RegoV1,
		ProcessAnnotation: true,
	})
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%s: empty module", p)
	}
	if !strings.HasSuffix(p, "_test.rego") {
		if errs := nondeterministicCalls(m); len(errs) > 0 {
			return nil, errs
		}
	}
	return m, nil
}

// nondeterministicCalls lists calls to builtins OPA marks nondeterministic
// (time.now_ns, http.send, rand.intn, uuid.rfc4122, opa.runtime, ...). Decisions
// must depend on input and data only, so they can be replayed and memoised per
// revision; the time a policy needs is input.time.
func nondeterministicCalls(m *ast.Module) ast.Errors {
	var errs ast.Errors
	check := func(op *ast.Term) {
		ref, ok := op.Value.(ast.Ref)
		if !ok {
			return
		}
		name := ref.String()
		if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
			errs = append(errs, ast.NewError(nondeterministicCode, op.Location,
				"builtin %s is not allowed: decisions must depend on input and data only (use input.time for the time)", name))
		}
	}
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) > 0 {
			check(terms[0])
		}
		return false
	})
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
			check(c[0])
		}
		return false
	})
	return errs
}

// mergeDataFile decodes one JSON data file (an object) and merges it into data at
// the path of its folder. A key defined twice with a non-object value is an error.
func mergeDataFile(data map[string]any, p string, src []byte) error {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: invalid JSON: %w", p, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: invalid JSON: data after the top-level value", p)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a data file must hold a JSON object", p)
	}
	at := data
	where := "data"
	if dir := path.Dir(p); dir != "." {
		for _, seg := range strings.Split(dir, "/") {
			where += "." + seg
			next, exists := at[seg]
			if !exists {
				m := map[string]any{}
				at[seg] = m
				at = m
				continue
			}
			m, ok := next.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: %s is already defined and not an object", p, where)
			}
			at = m
		}
	}
	return mergeObjects(at, obj, p, where)
}

func mergeObjects(dst, src map[string]any, p, where string) error {
	for k, v := range src {
		old, exists := dst[k]
		if !exists {
			dst[k] = v
			continue
		}
		oldObj, ok1 := old.(map[string]any)
		newObj, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: %s.%s is defined by more than one data file", p, where, k)
		}
		if err := mergeObjects(oldObj, newObj, p, where+"."+k); err != nil {
			return err
		}
	}
	return nil
}
