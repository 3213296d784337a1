package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func canonicalCases() map[string]Input {
	full := realisticInput()
	weird := realisticInput()
	weird.Caller.Attributes = map[string]string{"z": "1", "a": "2", "": "empty key", "quote\"": "back\\slash", "ctl": "\x01\t\n\r\b\f\x1f"}
	weird.Caller.User = "用户-ü"
	weird.Request.Roles = []string{"system", "</script>&"}
	weird.Request.MaxTokens = 1 << 40
	weird.Request.EstimatedPromptTokens = -1
	weird.Signals.InjectionScore = 0.15
	weird.Content = []ContentMessage{{Role: "user", Text: "hello\nworld \u2028 \"q\""}, {Role: "assistant", Text: ""}}
	tiny := realisticInput()
	tiny.Signals.InjectionScore = 1e-9
	return map[string]Input{"realistic": full, "zero": {}, "weird": weird, "tiny score": tiny}
}

// The canonical encoding decodes to the input and encodes back to itself, so a
// recorded input replays to the same document and the same hash.
func TestCanonicalInputRoundTrip(t *testing.T) {
	for name, in := range canonicalCases() {
		t.Run(name, func(t *testing.T) {
			raw, hash := CanonicalInput(in)
			sum := sha256.Sum256(raw)
			if hash != InputHashPrefix+hex.EncodeToString(sum[:]) {
				t.Errorf("hash %s does not hash %s", hash, raw)
			}
			back, err := ParseInput(raw)
			if err != nil {
				t.Fatalf("ParseInput(%s): %v", raw, err)
			}
			raw2, hash2 := CanonicalInput(back)
			if !bytes.Equal(raw, raw2) || hash != hash2 {
				t.Errorf("round trip changed the encoding:\n%s\n%s", raw, raw2)
			}
		})
	}
}

// Keys are sorted at every level and the bytes are what encoding/json writes
// for the same document (without HTML escaping).
func TestCanonicalInputIsSortedJSON(t *testing.T) {
	for name, in := range canonicalCases() {
		if name == "weird" {
			continue // encoding/json escapes U+2028, the canonical form does not
		}
		raw, _ := CanonicalInput(in)
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		if got := bytes.TrimSuffix(b.Bytes(), []byte("\n")); !bytes.Equal(got, raw) {
			t.Errorf("%s:\ncanonical %s\njson      %s", name, raw, got)
		}
	}
}

// The canonical document is the document the policy evaluates.
func TestCanonicalInputIsTheEvaluatedDocument(t *testing.T) {
	for name, in := range canonicalCases() {
		checkEvaluatedDocument(t, name, in)
	}
}

func checkEvaluatedDocument(t *testing.T, name string, in Input) {
	t.Helper()
	raw, _ := CanonicalInput(in)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %s: %v", name, raw, err)
	}
	want, err := ast.InterfaceToValue(doc)
	if err != nil {
		t.Fatal(err)
	}
	normalizeInput(&in)
	if got := inputValue(&in); got.Compare(want) != 0 {
		t.Errorf("%s: inputValue =\n%v\ncanonical =\n%v", name, got, want)
	}
}

func TestCanonicalInputNormalises(t *testing.T) {
	for _, tc := range []struct {
		score float64
		want  string
	}{{math.NaN(), `"injection_score":0,`}, {-3, `"injection_score":0,`}, {7, `"injection_score":1,`}, {0.25, `"injection_score":0.25,`}, {1e-9, `"injection_score":1e-9,`}} {
		in := Input{Signals: Signals{InjectionScore: tc.score}}
		raw, _ := CanonicalInput(in)
		if !bytes.Contains(raw, []byte(tc.want)) {
			t.Errorf("score %v: %s lacks %s", tc.score, raw, tc.want)
		}
	}
	in := Input{Trial: "a\xffb"}
	raw, _ := CanonicalInput(in)
	if !bytes.Contains(raw, []byte(`"trial":"a`+"\uFFFD"+`b"`)) {
		t.Errorf("invalid UTF-8 not replaced: %s", raw)
	}
	checkEvaluatedDocument(t, "invalid utf-8", in)
}

func TestParseInputRejects(t *testing.T) {
	good, _ := CanonicalInput(realisticInput())
	for name, raw := range map[string]string{
		"unknown field":  strings.Replace(string(good), `"trial":`, `"prompt":"x","trial":`, 1),
		"trailing data":  string(good) + `{}`,
		"wrong type":     strings.Replace(string(good), `"max_tokens":2048`, `"max_tokens":"many"`, 1),
		"not an object":  `[1,2]`,
		"not JSON":       `{"trial":`,
		"too large":      `{"trial":"` + strings.Repeat("x", MaxInputBytes) + `"}`,
		"nested unknown": strings.Replace(string(good), `"over_quota":false`, `"over_quota":false,"vip":true`, 1),
	} {
		if _, err := ParseInput([]byte(raw)); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
}

// Decide records the canonical input and its hash in the decision.
func TestDecideRecordsTheInput(t *testing.T) {
	e := demoEngine(t)
	in := realisticInput()
	raw, hash := CanonicalInput(in)
	for i, want := range []bool{false, true} {
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Input, raw) || d.InputHash != hash || d.MemoHit != want {
			t.Errorf("call %d: Input %s, InputHash %s, MemoHit %v; want %s, %s, %v", i, d.Input, d.InputHash, d.MemoHit, raw, hash, want)
		}
	}
}

func FuzzCanonicalInput(f *testing.F) {
	f.Add("demo", "u-1", "region", "eu", "weapons", "user", 0.3, 512)
	f.Add("", "", "", "", "", "", 0.0, 0)
	f.Add("t\x00\xff", "用户", "k\"", "v\\", "\u2028", "\n", math.Inf(1), -7)
	f.Fuzz(func(t *testing.T, trial, user, key, val, topic, text string, score float64, maxTokens int) {
		in := Input{
			Trial:   trial,
			Request: RequestFacts{MaxTokens: maxTokens, Roles: []string{text}},
			Caller:  Caller{User: user, Attributes: map[string]string{key: val}},
			Signals: Signals{Topics: []string{topic}, InjectionScore: score},
			Content: []ContentMessage{{Role: "user", Text: text}},
		}
		raw, hash := CanonicalInput(in)
		if !json.Valid(raw) {
			t.Fatalf("invalid JSON: %q", raw)
		}
		back, err := ParseInput(raw)
		if err != nil {
			t.Fatalf("ParseInput(%q): %v", raw, err)
		}
		raw2, hash2 := CanonicalInput(back)
		if !bytes.Equal(raw, raw2) || hash != hash2 {
			t.Fatalf("round trip:\n%q\n%q", raw, raw2)
		}
		checkEvaluatedDocument(t, "fuzz", in)
	})
}
