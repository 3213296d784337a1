package policies

import (
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultMemoEntries bounds an engine's decision memo unless Config.MemoEntries
// says otherwise. At about 300 bytes an entry, 16k entries are about 5 MB.
const DefaultMemoEntries = 16384

// memoShards splits the memo so concurrent Decide calls rarely share a lock.
const memoShards = 16

type memoKey = [sha256.Size]byte

// memo is a bounded LRU of decisions keyed by the hash of the projected input.
// An engine owns one: a memo never outlives its policy revision.
type memo struct {
	shards    [memoShards]memoShard
	hits      atomic.Uint64
	misses    atomic.Uint64
	evictions atomic.Uint64
}

type memoShard struct {
	mu         sync.Mutex
	entries    map[memoKey]*memoEntry
	head, tail *memoEntry // head is the most recently used
	capacity   int
}

type memoEntry struct {
	key        memoKey
	d          Decision // policy output only: no per-request fields
	prev, next *memoEntry
}

func newMemo(capacity int) *memo {
	m := &memo{}
	per := (capacity + memoShards - 1) / memoShards
	for i := range m.shards {
		m.shards[i].capacity = per
		m.shards[i].entries = make(map[memoKey]*memoEntry, min(per, 1024))
	}
	return m
}

func (m *memo) shard(k *memoKey) *memoShard { return &m.shards[k[0]%memoShards] }

// get returns the memoised decision of k, with its own copy of Reasons so the
// caller may keep or change it.
func (m *memo) get(k *memoKey) (Decision, bool) {
	s := m.shard(k)
	s.mu.Lock()
	e, ok := s.entries[*k]
	if !ok {
		s.mu.Unlock()
		m.misses.Add(1)
		return Decision{}, false
	}
	s.moveToFront(e)
	d := e.d
	s.mu.Unlock()
	m.hits.Add(1)
	if len(d.Reasons) > 0 {
		d.Reasons = slices.Clone(d.Reasons)
	}
	return d, true
}

// put stores d under k, evicting the least recently used entry of a full shard.
func (m *memo) put(k *memoKey, d Decision) {
	d.Revision, d.EvalMicros, d.Input, d.InputHash, d.MemoHit = "", 0, nil, "", false
	if len(d.Reasons) > 0 {
		d.Reasons = slices.Clone(d.Reasons) // the caller keeps its own slice
	}
	s := m.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[*k]; ok {
		e.d = d
		s.moveToFront(e)
		return
	}
	var e *memoEntry
	if len(s.entries) >= s.capacity && s.tail != nil {
		e = s.tail
		s.unlink(e)
		delete(s.entries, e.key)
		m.evictions.Add(1)
	} else {
		e = &memoEntry{}
	}
	e.key, e.d = *k, d
	s.entries[*k] = e
	s.pushFront(e)
}

func (m *memo) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

func (s *memoShard) moveToFront(e *memoEntry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *memoShard) unlink(e *memoEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *memoShard) pushFront(e *memoEntry) {
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}
