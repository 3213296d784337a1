package monitors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
	"github.com/stagegate/stagegate/incidents"
	"github.com/stagegate/stagegate/internal/testutil"
	"github.com/stagegate/stagegate/monitors"
)

// Two runners (as two `stagegate monitor` processes would) bind the same
// durable pull consumer: JetStream hands each message to one of them, so every
// interaction is processed exactly once overall and none is lost.
func TestTwoRunnersShareTheDurable(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Batch = 2
	a := e.runner(t, cfg, nil)
	b := e.runner(t, cfg, nil)

	const n = 200
	for i := range n {
		id := fmt.Sprintf("sh-%03d", i)
		resp := "no personal data here"
		if i%2 == 0 {
			resp = fmt.Sprintf("mail user%03d@example.com", i)
		}
		e.publish(t, newInteraction(id, "hi", resp), id)
	}
	testutil.WaitFor(t, waitLong, "every interaction processed once", func() bool {
		return a.Stats().Processed+b.Stats().Processed == n
	})
	sa, sb := a.Stats(), b.Stats()
	if sa.Processed == 0 || sb.Processed == 0 {
		t.Errorf("work not shared: A %d, B %d", sa.Processed, sb.Processed)
	}
	if got := sa.IncidentsOpened + sb.IncidentsOpened; got != n/2 {
		t.Errorf("incidents opened %d, want %d", got, n/2)
	}
	if got := e.streamMsgs(t, events.StreamFindings); got != n/2 {
		t.Errorf("FINDINGS holds %d, want %d", got, n/2)
	}
	list, err := e.store.Incidents(context.Background(), incidents.Filter{Limit: incidents.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n/2 {
		t.Errorf("store holds %d incidents, want %d", len(list), n/2)
	}
	cons, err := e.js.Consumer(context.Background(), events.StreamInteractions, monitors.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, waitLong, "nothing pending", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	t.Logf("A processed %d, B processed %d", sa.Processed, sb.Processed)
}

// With a burst rule, a run of leaks from one model opens a few incidents and
// then one aggregate incident, announced once.
func TestRunnerGroupsBurstsIntoOneAggregate(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Workers = 1 // arrival order = publish order, so the first three are the individual ones
	cfg.Burst = incidents.BurstRule{Window: time.Hour, Threshold: 3, MaxFindings: 10}
	r := e.runner(t, cfg, nil)
	const n = 25
	for i := range n {
		id := fmt.Sprintf("burst-%02d", i)
		in := newInteraction(id, "hi", fmt.Sprintf("call 1381234%04d", i))
		in.User = fmt.Sprintf("user-%d", i)
		e.publish(t, in, id)
	}
	testutil.WaitFor(t, waitLong, "all processed", func() bool { return r.Stats().Processed == n })
	list := e.incidents(t)
	if len(list) != 4 {
		t.Fatalf("%d incidents, want 3 own + 1 aggregate", len(list))
	}
	var agg *incidents.Incident
	for i := range list {
		if strings.HasPrefix(list[i].InteractionID, "burst:") {
			agg = &list[i]
		}
	}
	if agg == nil || !strings.Contains(agg.Title, "burst: 25 interactions with pii findings from model cand-a") || len(agg.Findings) != 10 {
		t.Fatalf("aggregate = %+v", agg)
	}
	if st := r.Stats(); st.IncidentsOpened != 4 || st.Aggregated != n-3 {
		t.Errorf("stats = %+v", st)
	}
	if got := e.streamMsgs(t, events.StreamIncidents); got != 4 {
		t.Errorf("INCIDENTS holds %d events, want 4 (the aggregate announced once)", got)
	}
	if got := e.streamMsgs(t, events.StreamFindings); got != n {
		t.Errorf("FINDINGS holds %d, want every finding (%d)", got, n)
	}
}

func TestBurstConfigValidated(t *testing.T) {
	err := (monitors.Config{Burst: incidents.BurstRule{Window: time.Minute}}).Validate()
	if err == nil || !strings.Contains(err.Error(), "burst threshold") {
		t.Errorf("Validate = %v, want a burst threshold error", err)
	}
	if err := (monitors.Config{Burst: monitors.DefaultBurst}).Validate(); err != nil {
		t.Errorf("DefaultBurst rejected: %v", err)
	}
}
