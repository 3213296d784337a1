package deploy

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WatcherResync is how often a Watcher re-reads every rollout it knows. The key
// watch delivers a change within milliseconds, but when the NATS server serving
// the watch dies it only notices after missing its idle heartbeats (seconds);
// the re-read keeps a kill switch reaching every gateway within a second even
// then. A state older than the one applied is never applied, from either path.
const WatcherResync = 250 * time.Millisecond

// resyncTimeout bounds one re-read of one rollout.
const resyncTimeout = 200 * time.Millisecond

// stale reports whether e is not newer than what was applied for its trial,
// and remembers its revision otherwise.
func (w *Watcher) stale(e jetstream.KeyValueEntry) bool {
	if e.Revision() <= w.seen[e.Key()] {
		return true
	}
	w.seen[e.Key()] = e.Revision()
	return false
}

// resync re-reads the rollouts seen so far and applies any newer state.
func (w *Watcher) resync(ctx context.Context) {
	for trial := range w.seen {
		rctx, cancel := context.WithTimeout(ctx, resyncTimeout)
		e, err := w.kv.Get(rctx, trial)
		cancel()
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) && ctx.Err() == nil {
				w.log.Debug("rollout watcher: resync", "trial", trial, "err", err)
			}
			continue // deletes come through the watch
		}
		if !w.stale(e) {
			w.log.Info("rollout watcher: state caught up by resync", "trial", trial, "revision", e.Revision())
			w.apply(e)
		}
	}
}
