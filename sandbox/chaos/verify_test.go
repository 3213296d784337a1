//go:build chaos

package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the monitor's incident store, read after it stopped

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/monitors"
)

// streamCount is a stream read back whole, counted by Nats-Msg-Id.
type streamCount struct {
	Messages uint64         // messages in the stream
	ByID     map[string]int // Nats-Msg-Id -> messages carrying it
	Status   map[string]string
	Fallback map[string]bool // interactions a failing candidate handed to the baseline
	NoMsgID  int
}

func (s streamCount) duplicates() int {
	n := 0
	for _, c := range s.ByID {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}

// readStream reads every message of a stream with an ordered consumer.
func readStream(ctx context.Context, js jetstream.JetStream, name string, decode bool) (streamCount, error) {
	out := streamCount{ByID: map[string]int{}, Status: map[string]string{}, Fallback: map[string]bool{}}
	st, err := js.Stream(ctx, name)
	if err != nil {
		return out, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return out, err
	}
	out.Messages = info.State.Msgs
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return out, err
	}
	var got uint64
	for got < out.Messages {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return out, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			got++
			id := m.Headers().Get(nats.MsgIdHdr)
			if id == "" {
				out.NoMsgID++
				continue
			}
			out.ByID[id]++
			if decode {
				var in struct {
					Status       string `json:"status"`
					FallbackFrom string `json:"fallback_from"`
				}
				if json.Unmarshal(m.Data(), &in) == nil {
					out.Status[id] = in.Status
					out.Fallback[id] = in.FallbackFrom != ""
				}
			}
		}
		if err := batch.Error(); err != nil {
			return out, err
		}
		if n == 0 {
			return out, fmt.Errorf("stream %s: read %d of %d messages, then nothing", name, got, out.Messages)
		}
	}
	return out, nil
}

// monitorCaughtUp reports whether the monitors' durable consumer has processed
// and acknowledged everything in INTERACTIONS.
func monitorCaughtUp(ctx context.Context, js jetstream.JetStream) (bool, string) {
	st, err := js.Stream(ctx, events.StreamInteractions)
	if err != nil {
		return false, err.Error()
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false, err.Error()
	}
	c, err := js.Consumer(ctx, events.StreamInteractions, monitors.DefaultDurable)
	if err != nil {
		return false, err.Error()
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return false, err.Error()
	}
	state := fmt.Sprintf("stream last seq %d, consumer acked floor %d, pending %d, ack pending %d",
		si.State.LastSeq, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending)
	return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq, state
}

// storeCount is the monitor's incident store, counted.
type storeCount struct {
	Interactions  map[string]bool
	IncidentOf    map[string]int // interaction id -> incidents
	Findings      int
	FindingIDs    int // distinct
	FindingsOfPII map[string]int
}

func readStore(ctx context.Context, path string) (storeCount, error) {
	out := storeCount{Interactions: map[string]bool{}, IncidentOf: map[string]int{}, FindingsOfPII: map[string]int{}}
	db, err := sql.Open("sqlite", path+"?mode=ro")
	if err != nil {
		return out, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id FROM interactions`)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return out, err
		}
		out.Interactions[id] = true
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, `SELECT interaction_id FROM incidents`)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return out, err
		}
		out.IncidentOf[id]++
	}
	rows.Close()
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT id) FROM findings`).Scan(&out.Findings, &out.FindingIDs); err != nil {
		return out, err
	}
	rows, err = db.QueryContext(ctx, `SELECT interaction_id, COUNT(*) FROM findings WHERE detector = 'pii' GROUP BY interaction_id`)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return out, err
		}
		out.FindingsOfPII[id] = n
	}
	return out, rows.Err()
}
