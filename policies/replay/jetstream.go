package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagegate/stagegate/events"
)

// Reading the stream.
const (
	// fetchBatch is how many messages one pull asks for.
	fetchBatch = 1000
	// fetchWait bounds a pull that finds nothing (the trial recorded nothing
	// in the window).
	fetchWait = time.Second
)

// Interactions reads the trial's interactions recorded at or after since (all
// of them when since is zero) from the INTERACTIONS stream with an ordered,
// ephemeral consumer (nothing is acknowledged or left behind), up to the last
// one stored when the read began. A message that is not a valid interaction
// is yielded as a record without input (counted as skipped).
func Interactions(js jetstream.JetStream, trial string, since time.Time) Source {
	return func(ctx context.Context, yield func(Record) error) error {
		if !events.ValidToken(trial) {
			return fmt.Errorf("%w: trial %q", ErrConfig, trial)
		}
		cfg := jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.SubjectInteractions + "." + trial + ".>"},
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		}
		if !since.IsZero() {
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
		}
		cons, err := js.OrderedConsumer(ctx, events.StreamInteractions, cfg)
		if err != nil {
			return fmt.Errorf("%w: stream %s: %w", ErrSource, events.StreamInteractions, err)
		}
		for {
			batch, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(fetchWait))
			if err != nil {
				return fmt.Errorf("%w: fetch: %w", ErrSource, err)
			}
			n, done := 0, false
			for msg := range batch.Messages() {
				n++
				rec := Record{ID: fmt.Sprintf("(message %s)", msg.Subject())}
				if meta, err := msg.Metadata(); err == nil {
					rec.ID = fmt.Sprintf("(stream sequence %d)", meta.Sequence.Stream)
					done = meta.NumPending == 0
				}
				if in, err := events.DecodeInteraction(msg.Data()); err == nil {
					rec = FromInteraction(in)
				}
				if err := yield(rec); err != nil {
					return err
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%w: fetch: %w", ErrSource, err)
			}
			if n == 0 || done {
				return ctx.Err()
			}
		}
	}
}

// Snapshot serves a private copy of a sandbox data dir's INTERACTIONS stream
// from an embedded nats-server, so a replay never touches the sandbox's own
// store: the stream's files are copied first (a running sandbox keeps
// appending to its copy undisturbed; the snapshot ends at what was on disk).
type Snapshot struct {
	dir string
	ns  *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// OpenSnapshot copies the INTERACTIONS stream out of dataDir (the sandbox's
// --data-dir) and starts an embedded server on the copy, listening nowhere.
func OpenSnapshot(dataDir string) (*Snapshot, error) {
	src, rel, err := findStream(filepath.Join(dataDir, "jetstream"))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "stagegate-replay-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	s := &Snapshot{dir: tmp}
	if err := copyTree(src, filepath.Join(tmp, rel)); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: copy the stream: %w", ErrSource, err)
	}
	s.ns, err = server.NewServer(&server.Options{
		ServerName: "stagegate-replay", JetStream: true, StoreDir: tmp,
		DontListen: true, NoLog: true, NoSigs: true,
		JetStreamMaxMemory: 64 << 20,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	go s.ns.Start()
	if !s.ns.ReadyForConnections(30 * time.Second) {
		s.Close()
		return nil, fmt.Errorf("%w: snapshot server not ready", ErrSource)
	}
	if s.nc, err = nats.Connect("", nats.InProcessServer(s.ns), nats.Name("stagegate-replay")); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return s, nil
}

// JetStream is the snapshot's JetStream context.
func (s *Snapshot) JetStream() jetstream.JetStream { return s.js }

// Close stops the server and removes the copy.
func (s *Snapshot) Close() error {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	return os.RemoveAll(s.dir)
}

// findStream locates <store>/jetstream/<account>/streams/INTERACTIONS under
// storeDir and returns it with its path relative to the store dir a server
// would be given.
func findStream(storeDir string) (dir, rel string, err error) {
	want := filepath.Join("streams", events.StreamInteractions)
	walkErr := filepath.WalkDir(storeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasSuffix(p, string(filepath.Separator)+want) {
			// p = <store>/jetstream/<account>/streams/INTERACTIONS
			store := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(p))))
			r, rerr := filepath.Rel(store, p)
			if rerr != nil {
				return rerr
			}
			dir, rel = p, r
			return fs.SkipAll
		}
		return nil
	})
	if walkErr != nil && !errors.Is(walkErr, fs.ErrNotExist) {
		return "", "", fmt.Errorf("%w: %s: %w", ErrSource, storeDir, walkErr)
	}
	if dir == "" {
		return "", "", fmt.Errorf("%w: no %s stream under %s (is this a sandbox --data-dir?)", ErrSource, events.StreamInteractions, storeDir)
	}
	return dir, rel, nil
}

// copyTree copies the stream's files, without its consumers' state (obs/).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if rel == "obs" {
				return fs.SkipDir
			}
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
