package eval

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/stagegate/stagegate/monitors/offline"
)

// Data set file names (../shared/datasets/README.md, "Which file measures what").
const (
	FileToxicity   = "toxicity_surge_en.jsonl"
	FileXSTest     = "harmful_vs_safe_xstest_en.jsonl"
	FileJBB        = "jailbreak_jbb_artifacts_en.jsonl"
	FileSelfRemind = "jailbreak_selfreminder_en.jsonl"
	FileInjection  = "prompt_injection_fixtures_en.jsonl"
	FilePresidio   = "pii_presidio_synth_en.jsonl"
	FileFlames     = "adversarial_flames_zh.jsonl"
)

// Files lists the data sets in report order.
var Files = []string{FileToxicity, FileXSTest, FileJBB, FileSelfRemind, FileInjection, FilePresidio, FileFlames}

// Labels of the data sets, which are also the finding categories.
const (
	LabelPII       = "pii"
	LabelInjection = "prompt_injection"
	LabelJailbreak = "jailbreak"
	LabelToxicity  = "toxicity"
	LabelUnsafe    = "unsafe_advice"
	LabelBenign    = "benign"
)

// Categories in report order.
var Categories = []string{LabelPII, LabelInjection, LabelJailbreak, LabelToxicity, LabelUnsafe}

// maxRowBytes bounds one data set or scan line.
const maxRowBytes = 8 << 20

// Row is one data set row joined with its scan output.
type Row struct {
	File        string
	ID          string
	Lang        string
	Prompt      string
	Response    string
	Labels      []string
	SourceLabel json.RawMessage
	Split       string
	Findings    []offline.Finding
	Timings     map[string]float64
}

// Has reports whether the row carries label l.
func (r *Row) Has(l string) bool {
	for _, x := range r.Labels {
		if x == l {
			return true
		}
	}
	return false
}

// Flagged reports whether a finding of category cat was reported; with
// responseOnly, only findings with evidence in the response count.
func (r *Row) Flagged(cat string, responseOnly bool) bool {
	for _, f := range r.Findings {
		if f.Category != cat {
			continue
		}
		if !responseOnly {
			return true
		}
		for _, s := range f.Spans {
			if s.Field == "response" {
				return true
			}
		}
	}
	return false
}

// Load reads every data set in Files from datasets and joins it with the scan
// output of the same name in scans. A row without scan output is an error:
// the report must cover every row.
func Load(datasets, scans string) (map[string][]Row, error) {
	out := map[string][]Row{}
	var errs []error
	for _, name := range Files {
		rows, err := loadFile(filepath.Join(datasets, name), filepath.Join(scans, name), name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = rows
	}
	return out, errors.Join(errs...)
}

func loadFile(dataPath, scanPath, name string) ([]Row, error) {
	var rows []Row
	index := map[string]int{}
	err := eachLine(dataPath, func(line []byte, n int) error {
		var raw struct {
			ID          string          `json:"id"`
			Lang        string          `json:"lang"`
			Prompt      string          `json:"prompt"`
			Response    string          `json:"response"`
			Labels      []string        `json:"labels"`
			SourceLabel json.RawMessage `json:"source_label"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return fmt.Errorf("%s:%d: %w", dataPath, n, err)
		}
		if raw.ID == "" {
			return fmt.Errorf("%s:%d: empty id", dataPath, n)
		}
		if _, dup := index[raw.ID]; dup {
			return fmt.Errorf("%s:%d: duplicate id %q", dataPath, n, raw.ID)
		}
		index[raw.ID] = len(rows)
		rows = append(rows, Row{File: name, ID: raw.ID, Lang: raw.Lang, Prompt: raw.Prompt, Response: raw.Response,
			Labels: raw.Labels, SourceLabel: raw.SourceLabel, Split: Split(raw.ID)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := 0
	err = eachLine(scanPath, func(line []byte, n int) error {
		var o offline.Output
		if err := json.Unmarshal(line, &o); err != nil {
			return fmt.Errorf("%s:%d: %w", scanPath, n, err)
		}
		id, err := strconv.Unquote(string(o.ID))
		if err != nil {
			return fmt.Errorf("%s:%d: id %s is not a string", scanPath, n, o.ID)
		}
		i, ok := index[id]
		if !ok {
			return fmt.Errorf("%s:%d: id %q is not in the data set", scanPath, n, id)
		}
		rows[i].Findings, rows[i].Timings = o.Findings, o.Timings
		seen++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if seen != len(rows) {
		return nil, fmt.Errorf("%s: scan output covers %d of %d rows", scanPath, seen, len(rows))
	}
	return rows, nil
}

func eachLine(path string, fn func(line []byte, n int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxRowBytes)
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Bytes(), n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
