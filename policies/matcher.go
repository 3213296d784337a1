package policies

import (
	"errors"
	"fmt"
)

// maxMatcherCells bounds the transition table (states × byte classes) of one
// matcher: 4 Mi cells of 4 bytes is 16 MiB, far above any realistic keyword list.
const maxMatcherCells = 4 << 20

// matcher is an Aho–Corasick automaton compiled to a full DFA over byte classes.
// Bytes are folded before lookup: ASCII letters to lower case and ASCII white
// space to ' ', through the class table, so matching is case-insensitive for
// ASCII without a lowered copy of the text. Non-ASCII bytes match exactly, so a
// UTF-8 pattern (Chinese) matches as a substring on character boundaries.
//
// The table is laid out for the scan loop: a cell holds the next state's row
// offset (state × nclass), so a step is one load and one add, and the offset is
// stored complemented (negative) when patterns end in that state, so the common
// no-match step costs a single sign test.
type matcher struct {
	class    [256]int32 // folded byte -> class; 0 is "in no pattern"
	nclass   int32
	delta    []int32 // delta[row+class]: next row, ^row if patterns end there; row 0 is the root
	outStart []int32 // patterns ending at state s: outIDs[outStart[s]:outStart[s+1]]
	outIDs   []int32
}

// outputs returns the ids of the patterns that end in the state at row.
func (m *matcher) outputs(row int32) []int32 {
	s := row / m.nclass
	return m.outIDs[m.outStart[s]:m.outStart[s+1]]
}

// foldByte is the normalisation patterns get at build time and text bytes get
// through the class table at scan time.
func foldByte(b byte) byte {
	switch {
	case 'A' <= b && b <= 'Z':
		return b + ('a' - 'A')
	case b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r':
		return ' '
	}
	return b
}

// newMatcher compiles patterns (already folded, non-empty); pattern i is
// reported as id i.
func newMatcher(patterns []string) (*matcher, error) {
	m := &matcher{}
	// Byte classes: one per distinct pattern byte, then aliases for the bytes
	// that fold onto them.
	var n int32
	for _, p := range patterns {
		if p == "" {
			return nil, errors.New("empty pattern")
		}
		for i := 0; i < len(p); i++ {
			if m.class[p[i]] == 0 {
				if n == 255 {
					return nil, errors.New("patterns use more than 255 distinct bytes")
				}
				n++
				m.class[p[i]] = n
			}
		}
	}
	for b := 0; b < 256; b++ {
		if f := foldByte(byte(b)); f != byte(b) {
			m.class[b] = m.class[f]
		}
	}
	m.nclass = n + 1
	nc := int(m.nclass)

	// Trie, with -1 for "no edge". The table is sized once for the most states
	// the patterns can make (one per pattern byte, plus the root), and each new
	// state appends a row of -1 in one copy.
	maxStates := 1
	for _, p := range patterns {
		maxStates += len(p)
	}
	m.delta = make([]int32, 0, min(maxStates*nc, maxMatcherCells))
	empty := make([]int32, nc)
	for i := range empty {
		empty[i] = -1
	}
	newState := func() (int32, error) {
		if len(m.delta)+nc > maxMatcherCells {
			return 0, fmt.Errorf("keyword set too large (more than %d table cells)", maxMatcherCells)
		}
		s := int32(len(m.delta) / nc)
		m.delta = append(m.delta, empty...)
		return s, nil
	}
	if _, err := newState(); err != nil {
		return nil, err
	}
	var outs [][]int32
	outs = append(outs, nil)
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.class[p[i]]
			next := m.delta[s*m.nclass+c]
			if next < 0 {
				var err error
				if next, err = newState(); err != nil {
					return nil, err
				}
				outs = append(outs, nil)
				m.delta[s*m.nclass+c] = next
			}
			s = next
		}
		outs[s] = append(outs[s], int32(id))
	}

	// Breadth-first: failure links, inherited outputs, and missing edges filled
	// in from the failure state, which turns the trie into a DFA.
	states := len(m.delta) / nc
	fail := make([]int32, states)
	queue := make([]int32, 0, states)
	for c := range nc {
		if next := m.delta[c]; next < 0 {
			m.delta[c] = 0
		} else {
			fail[next] = 0
			queue = append(queue, next)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		outs[s] = append(outs[s], outs[fail[s]]...)
		for c := range m.nclass {
			cell := s*m.nclass + c
			viaFail := m.delta[fail[s]*m.nclass+c]
			if next := m.delta[cell]; next < 0 {
				m.delta[cell] = viaFail
			} else {
				fail[next] = viaFail
				queue = append(queue, next)
			}
		}
	}

	m.outStart = make([]int32, states+1)
	for s, o := range outs {
		m.outStart[s+1] = m.outStart[s] + int32(len(o))
		m.outIDs = append(m.outIDs, o...)
	}
	for cell, next := range m.delta {
		row := next * m.nclass
		if len(outs[next]) > 0 {
			row = ^row
		}
		m.delta[cell] = row
	}
	return m, nil
}
