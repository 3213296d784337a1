package policies

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func standardFS(tb testing.TB) fs.FS {
	tb.Helper()
	sub, err := fs.Sub(Builtin(), StandardPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}

// mixRate is the traffic the realistic mix models: requests per minute of one
// trial (100 requests/s). input.time advances a minute every mixRate inputs.
const mixRate = 6000

// weighted picks one of values by weight.
func weighted[T any](r *rand.Rand, values []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return values[i]
		}
		n -= w
	}
	return values[len(values)-1]
}

// mixGen generates inputs as a pilot trial's traffic produces them: 5,000 users
// of three tenants and three cohorts, 10% minors, 2% over quota, most prompts
// without topics or PII, a few denied topics and injection cues, English,
// Chinese and other languages, and the time advancing one minute every mixRate
// requests. The same seed gives the same sequence.
type mixGen struct {
	r     *rand.Rand
	i     int
	start time.Time
}

func newMixGen(seed uint64) *mixGen {
	return &mixGen{r: rand.New(rand.NewPCG(seed, 42)), start: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

var mixRoles = []string{"system", "user", "assistant", "user", "assistant", "user", "assistant", "user", "assistant", "user", "assistant", "user"}

func (g *mixGen) next() Input {
	r := g.r
	msgs := 1 + r.IntN(12)
	in := Input{
		Trial: "standard",
		Stage: "canary",
		Time:  g.start.Add(time.Duration(g.i/mixRate) * time.Minute).Format(time.RFC3339),
		Request: RequestFacts{
			Model: "chat", Stream: r.IntN(2) == 0,
			MaxTokens:    weighted(r, []int{0, 256, 512, 1024, 2048, 4096}, []int{40, 10, 20, 15, 10, 5}),
			MessageCount: msgs, Roles: mixRoles[:msgs], EstimatedPromptTokens: 10 + r.IntN(4000),
		},
		Caller: Caller{
			Tenant:     weighted(r, []string{"acme", "globex", "initech"}, []int{70, 25, 5}),
			User:       fmt.Sprintf("u_%06d", r.IntN(5000)),
			Cohort:     weighted(r, []string{"pilot", "public", "internal"}, []int{60, 30, 10}),
			Attributes: map[string]string{"age_band": weighted(r, []string{"adult", "13_17", "under_13"}, []int{90, 8, 2})},
			OverQuota:  r.IntN(50) == 0,
		},
		Signals: Signals{
			Topics: weighted(r, [][]string{nil, {"travel"}, {"banking"}, {"weapons"}, {"medical_dosing"}, {"gambling"}, {"dating"}, {"banking", "travel"}},
				[]int{80, 6, 5, 2, 2, 2, 1, 2}),
			PIITypes:       weighted(r, [][]string{nil, {"email"}, {"phone"}, {"card"}, {"email", "phone"}}, []int{85, 8, 4, 2, 1}),
			InjectionScore: weighted(r, []float64{0, 0.3, 0.5, 0.9}, []int{90, 5, 3, 2}),
			Language:       weighted(r, []string{"en", "zh", "und"}, []int{70, 25, 5}),
		},
	}
	g.i++
	return in
}

// realisticMix returns the first n inputs of newMixGen(seed).
func realisticMix(n int, seed uint64) []Input {
	g := newMixGen(seed)
	out := make([]Input, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}

// TestMemoNeverChangesAResult compares every memoised decision with a fresh
// evaluation, on the corpus inputs and on a realistic mix, for the demo and
// the standard (full library) policies.
func TestMemoNeverChangesAResult(t *testing.T) {
	inputs := realisticMix(2000, 1)
	for _, file := range []string{"demo.corpus.yaml", "standard.corpus.yaml"} {
		cases, err := LoadCorpus(LoadDir("testdata"), file)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			inputs = append(inputs, c.Input)
		}
	}
	for name, fsys := range map[string]fs.FS{"demo": demoFS(t), "standard": standardFS(t)} {
		t.Run(name, func(t *testing.T) {
			memo, err := New(context.Background(), Config{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := New(context.Background(), Config{FS: fsys, MemoEntries: -1})
			if err != nil {
				t.Fatal(err)
			}
			for pass := range 2 {
				for i, in := range inputs {
					got, err1 := memo.Decide(context.Background(), in)
					want, err2 := fresh.Decide(context.Background(), in)
					if err1 != nil || err2 != nil {
						t.Fatalf("input %d: %v, %v", i, err1, err2)
					}
					if want.MemoHit {
						t.Fatal("an engine without a memo reported a memo hit")
					}
					if pass == 1 && !got.MemoHit {
						t.Fatalf("pass 2, input %d: not a memo hit", i)
					}
					got.EvalMicros, want.EvalMicros, got.MemoHit = 0, 0, false
					if !decisionsEqual(got, want) || !bytes.Equal(got.Input, want.Input) || got.InputHash != want.InputHash {
						t.Fatalf("pass %d, input %d:\nmemo  %+v\nfresh %+v", pass, i, got, want)
					}
				}
			}
			st := memo.Stats()
			if st.Hits < uint64(len(inputs)) || st.Evaluations > uint64(len(inputs)) {
				t.Errorf("stats %+v: want at least %d hits", st, len(inputs))
			}
			t.Logf("%s: %d inputs, hit rate %.1f%% over two passes, %d entries, keys on %v",
				name, len(inputs), 100*st.HitRate(), st.MemoEntries, st.KeyFields)
		})
	}
}

func TestMemoKeysOnWhatThePolicyReads(t *testing.T) {
	e := demoEngine(t)
	ctx := context.Background()
	a := realisticInput()
	b := realisticInput()
	b.Caller.User, b.Request.EstimatedPromptTokens, b.Time = "someone-else", 5, "2030-01-01T00:00:00Z"
	c := realisticInput()
	c.Signals.Topics = []string{"weapons"}
	for i, tc := range []struct {
		in      Input
		hit     bool
		allowed bool
	}{{a, false, true}, {b, true, true}, {c, false, false}, {a, true, true}} {
		d, err := e.Decide(ctx, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if d.MemoHit != tc.hit || d.Allow != tc.allowed {
			t.Errorf("call %d: hit %v allow %v, want %v %v", i, d.MemoHit, d.Allow, tc.hit, tc.allowed)
		}
		if _, h := CanonicalInput(tc.in); d.InputHash != h {
			t.Errorf("call %d: InputHash is not the hash of this input", i)
		}
	}
}

func TestProjection(t *testing.T) {
	const head = "package stagegate\n\ndefault decision := {\"allow\": true}\n\n"
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"nothing", "", nil},
		{"leaves", "decision := {\"allow\": false} if {\n\tinput.caller.tenant == \"x\"\n\tinput.signals.topics[_] == \"y\"\n}\n",
			[]string{"caller.tenant", "signals.topics"}},
		{"a group", "decision := {\"allow\": false} if count(input.request) > 3\n",
			[]string{"request.model", "request.stream", "request.max_tokens", "request.message_count", "request.roles", "request.estimated_prompt_tokens"}},
		{"attribute keys", "decision := {\"allow\": false} if {\n\tinput.caller.attributes.age == \"minor\"\n\tinput.caller.attributes[\"region\"] == \"eu\"\n}\n",
			[]string{"caller.attributes.age", "caller.attributes.region"}},
		{"attributes by variable", "k := \"age\"\n\ndecision := {\"allow\": false} if input.caller.attributes[k] == \"minor\"\n",
			[]string{"caller.attributes"}},
		{"whole input", "decision := {\"allow\": false} if object.get(input, \"x\", 1) == 2\n", allFieldNames()},
		{"dynamic key", "k := \"trial\"\n\ndecision := {\"allow\": false} if input[k] == \"x\"\n", allFieldNames()},
		{"import alias", "import input.caller as c\n\ndecision := {\"allow\": false} if c.user == \"x\"\n", []string{"caller.user"}},
		{"assigned then read", "decision := {\"allow\": false} if {\n\tc := input.caller\n\tc.user == \"x\"\n}\n",
			[]string{"caller.tenant", "caller.user", "caller.cohort", "caller.attributes", "caller.over_quota"}},
		{"not a field", "decision := {\"allow\": false} if input.nope == 1\n", nil},
		{"content", "decision := {\"allow\": false} if contains(input.content[_].text, \"x\")\n", []string{"content"}},
		{"input in a path", "decision := {\"allow\": false} if data.x[input.stage] == 1\n", []string{"stage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, map[string]string{"p.rego": head + tc.body})
			if got := e.Stats().KeyFields; !slices.Equal(got, tc.want) {
				t.Errorf("KeyFields = %v, want %v", got, tc.want)
			}
		})
	}
}

func allFieldNames() []string {
	out := make([]string, len(fieldNames))
	for i, f := range fieldNames {
		out[i] = f.name
	}
	return out
}

func TestMemoLRU(t *testing.T) {
	m := newMemo(memoShards * 2) // two entries per shard
	key := func(shard, i byte) memoKey { return memoKey{shard, i} }
	for i := range byte(3) {
		k := key(0, i)
		m.put(&k, Decision{Allow: true, Reasons: []Reason{{Code: fmt.Sprint(i)}}})
	}
	k0, k1, k2 := key(0, 0), key(0, 1), key(0, 2)
	if _, ok := m.get(&k0); ok {
		t.Error("the least recently used entry was not evicted")
	}
	if _, ok := m.get(&k1); !ok {
		t.Error("entry 1 missing")
	}
	k3 := key(0, 3)
	m.put(&k3, Decision{})
	if _, ok := m.get(&k2); ok {
		t.Error("entry 2 should have been evicted after 1 was used")
	}
	d, ok := m.get(&k1)
	if !ok || d.Reasons[0].Code != "1" {
		t.Fatalf("entry 1 = %+v, %v", d, ok)
	}
	d.Reasons[0].Code = "changed"
	if d2, _ := m.get(&k1); d2.Reasons[0].Code != "1" {
		t.Error("a caller changed a memoised decision through its Reasons")
	}
	if m.len() != 2 || m.evictions.Load() != 2 {
		t.Errorf("len %d, evictions %d; want 2, 2", m.len(), m.evictions.Load())
	}
}

func TestMemoBoundedUnderLoad(t *testing.T) {
	e, err := New(context.Background(), Config{FS: demoFS(t), MemoEntries: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		in := realisticInput()
		in.Request.MaxTokens = i + 1 // a field the demo reads: every input is new
		if _, err := e.Decide(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	st := e.Stats()
	if st.MemoEntries > 64 || st.Evictions < 500-64 || st.Misses != 500 {
		t.Errorf("stats %+v: memo not bounded to 64", st)
	}
}

func TestDecideHitAllocations(t *testing.T) {
	e := demoEngine(t)
	in := realisticInput()
	if _, err := e.Decide(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if d, err := e.Decide(context.Background(), in); err != nil || !d.MemoHit {
			t.Fatal("not a hit")
		}
	})
	// The recorded input and its hash string.
	if allocs > 2 {
		t.Errorf("a memo hit allocates %v times, want at most 2", allocs)
	}
}
