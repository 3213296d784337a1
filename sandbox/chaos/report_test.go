//go:build chaos

package chaos

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// phaseCount is the exact accounting of one phase's requests.
type phaseCount struct {
	Name         string
	Sent         int
	Answered     int // a whole answer: 200 with a completion, or a stream up to [DONE]
	StreamBroken int // 200 stream ended with the documented error event
	Failed       int // no answer, a non-200, or an answer cut short without the error event
	IDs          int // interaction ids the client received (every 200)
	Recorded     int // of those, in INTERACTIONS exactly once
	Duplicated   int // of those, in INTERACTIONS more than once
	Missing      int // of those, not in INTERACTIONS
	InStore      int // of those, in the monitor's store
	Partial      int // of those, recorded as partial (a broken stream)
	Fallbacks    int // of those, served by the baseline after the candidate failed
	PII          int // answered requests whose answer carried personal data: incidents expected
	Incidents    int // of those, with exactly one incident in the store
	P50, P99     time.Duration
	failures     map[string]int
}

// report is everything CHAOS.md states.
type report struct {
	phases                          []*phaseLog
	counts                          []*phaseCount
	total                           phaseCount
	interactions, findings          streamCount
	store                           storeCount
	obs                             observations
	rate                            int
	scale                           float64
	notReceived, findingDuplicates  int
	incidentsExtra, piiWithoutFinds int
}

// account matches what the client received against the streams and the store.
func account(results []result, interactions, findings streamCount, store storeCount) *report {
	rep := &report{interactions: interactions, findings: findings, store: store}
	byName := map[string]*phaseCount{}
	order := []string{}
	lat := map[string][]time.Duration{}
	received := map[string]bool{}
	for _, r := range results {
		c := byName[r.phase]
		if c == nil {
			c = &phaseCount{Name: r.phase, failures: map[string]int{}}
			byName[r.phase] = c
			order = append(order, r.phase)
		}
		c.Sent++
		lat[r.phase] = append(lat[r.phase], r.latency)
		switch {
		case r.status == 200 && r.done:
			c.Answered++
		case r.status == 200 && r.broken:
			c.StreamBroken++
		default:
			c.Failed++
			c.failures[failureKind(r)]++
		}
		if r.id == "" {
			continue
		}
		received[r.id] = true
		c.IDs++
		switch n := interactions.ByID[r.id]; {
		case n == 1:
			c.Recorded++
		case n > 1:
			c.Duplicated++
		default:
			c.Missing++
		}
		if store.Interactions[r.id] {
			c.InStore++
		}
		if interactions.Status[r.id] == "partial" {
			c.Partial++
		}
		if interactions.Fallback[r.id] {
			c.Fallbacks++
		}
		if r.pii && r.done {
			c.PII++
			if store.IncidentOf[r.id] == 1 && store.FindingsOfPII[r.id] > 0 {
				c.Incidents++
			}
		}
	}
	for _, name := range order {
		c := byName[name]
		d := lat[name]
		slices.Sort(d)
		c.P50, c.P99 = pct(d, 0.50), pct(d, 0.99)
		rep.counts = append(rep.counts, c)
		t := &rep.total
		t.Sent += c.Sent
		t.Answered += c.Answered
		t.StreamBroken += c.StreamBroken
		t.Failed += c.Failed
		t.IDs += c.IDs
		t.Recorded += c.Recorded
		t.Duplicated += c.Duplicated
		t.Missing += c.Missing
		t.InStore += c.InStore
		t.Partial += c.Partial
		t.Fallbacks += c.Fallbacks
		t.PII += c.PII
		t.Incidents += c.Incidents
	}
	for id := range interactions.ByID {
		if !received[id] {
			rep.notReceived++
		}
	}
	rep.findingDuplicates = findings.duplicates()
	for id, n := range store.IncidentOf {
		if n > 1 {
			rep.incidentsExtra += n - 1
		}
		if store.FindingsOfPII[id] == 0 {
			rep.piiWithoutFinds++
		}
	}
	return rep
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))].Round(time.Millisecond)
}

func failureKind(r result) string {
	switch {
	case r.status == 0 && strings.Contains(r.errText, "connection refused"):
		return "connection refused"
	case r.status == 0:
		return "no answer (connection cut)"
	case r.status != 200:
		return fmt.Sprintf("HTTP %d", r.status)
	default:
		return "answer cut short"
	}
}

// killPhases are where failed requests are expected: in flight at the SIGKILL,
// or sent while no gateway process was running.
var killPhases = map[string]bool{"gateway-kill": true, "gateway-down": true}

// failures lists every criterion the run missed; empty means it passed.
func (rep *report) failures() []string {
	var out []string
	fail := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	for _, c := range rep.counts {
		if c.Failed > 0 && !killPhases[c.Name] {
			fail("phase %s: %d failed client requests (%v)", c.Name, c.Failed, c.failures)
		}
	}
	t := rep.total
	if t.Missing > 0 || t.Duplicated > 0 {
		fail("interactions the client received: %d missing from INTERACTIONS, %d duplicated", t.Missing, t.Duplicated)
	}
	if t.InStore != t.IDs {
		fail("%d of %d received interactions are not in the monitor's store", t.IDs-t.InStore, t.IDs)
	}
	if t.Incidents != t.PII {
		fail("incidents: %d expected, %d found exactly once with a PII finding", t.PII, t.Incidents)
	}
	if rep.incidentsExtra > 0 || rep.findingDuplicates > 0 || rep.interactions.NoMsgID > 0 || rep.findings.NoMsgID > 0 {
		fail("duplicates: %d extra incidents, %d duplicated findings; messages without Nats-Msg-Id: %d, %d",
			rep.incidentsExtra, rep.findingDuplicates, rep.interactions.NoMsgID, rep.findings.NoMsgID)
	}
	if rep.obs.SpoolRecordsAtNATSDownEnd == 0 {
		fail("nothing was spooled while NATS was down")
	}
	if rep.obs.SpoolRecordsBeforeKill == 0 || rep.obs.ReplayedAfterRestart == 0 {
		fail("spool across the SIGKILL: %.0f records on disk at the kill, %.0f replayed by the new process", rep.obs.SpoolRecordsBeforeKill, rep.obs.ReplayedAfterRestart)
	}
	lost := rep.obs.LostBeforeKill + rep.obs.FinalMetrics["stagegate_publish_lost_total"]
	if lost > 0 {
		fail("the gateway counted %.0f interactions lost", lost)
	}
	for _, p := range []string{"candidate-500", "candidate-hang"} {
		if !rep.obs.CircuitOpenSeen[p] || rep.obs.FallbacksDuring[p] == 0 {
			fail("%s: circuit seen open %v, fallbacks %.0f", p, rep.obs.CircuitOpenSeen[p], rep.obs.FallbacksDuring[p])
		}
	}
	for _, c := range rep.counts {
		if c.Name == "candidate-cut" && (c.StreamBroken == 0 || c.Partial != c.StreamBroken) {
			fail("candidate-cut: %d streams ended with the error event, %d recorded as partial", c.StreamBroken, c.Partial)
		}
	}
	return out
}

func yes(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

// markdown renders CHAOS.md.
func (rep *report) markdown() string {
	var b strings.Builder
	t, o := rep.total, rep.obs
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Chaos run\n\n")
	w("Written by `make chaos` (package `sandbox/chaos`, build tag `chaos`) on %s, %s/%s, %d CPUs. ",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	w("Everything on loopback: the gateway (`stagegate up`, trial `chaos`, fail mode **open**, fallback on, 50 %% of users on the candidate) ")
	w("and the monitor (`stagegate monitor`) run as child processes; NATS JetStream (stopped and restarted on the same port and store) ")
	w("and the candidate model (the simulator, or a scripted fault) run in the test. The client sends %d requests/s ", rep.rate)
	w("(one in ten asks for an answer with personal data, one in four streams, 300 users). Phase lengths ×%.2g. ", rep.scale)
	w("Every number below is a count over all requests, not a sample; interactions are matched by id (`X-Stagegate-Interaction` = `Nats-Msg-Id`).\n\n")

	w("## Verdict\n\n| check | result |\n|---|---|\n")
	fails := rep.failures()
	failedOutside := 0
	for _, c := range rep.counts {
		if !killPhases[c.Name] {
			failedOutside += c.Failed
		}
	}
	var natsDown *phaseCount
	for _, c := range rep.counts {
		if c.Name == "nats-down" {
			natsDown = c
		}
	}
	if natsDown != nil {
		w("| NATS down %s: failed client requests = 0 (fail open) | %s (%d sent, %d answered, %d failed) |\n",
			rep.phaseSpan("nats-down"), yes(natsDown.Failed == 0), natsDown.Sent, natsDown.Answered+natsDown.StreamBroken, natsDown.Failed)
	}
	w("| failed client requests outside the SIGKILL window = 0 | %s (%d) |\n", yes(failedOutside == 0), failedOutside)
	w("| every interaction id the client received is in INTERACTIONS exactly once | %s (%d received, %d once, %d missing, %d duplicated) |\n",
		yes(t.Missing == 0 && t.Duplicated == 0 && t.Recorded == t.IDs), t.IDs, t.Recorded, t.Missing, t.Duplicated)
	w("| **lost = 0** | %s (lost = %d) |\n", yes(t.Missing == 0), t.Missing)
	w("| every `[sim:pii]` answer has exactly one incident | %s (%d expected, %d found) |\n", yes(t.PII == t.Incidents), t.PII, t.Incidents)
	w("| no finding or incident duplicated (monitor SIGKILLed mid-stream) | %s (%d duplicated findings on FINDINGS, %d extra incidents) |\n",
		yes(rep.findingDuplicates == 0 && rep.incidentsExtra == 0), rep.findingDuplicates, rep.incidentsExtra)
	w("| spool of the SIGKILLed gateway replayed by the restarted one | %s (%.0f records on disk at the kill, %.0f replayed) |\n",
		yes(o.SpoolRecordsBeforeKill > 0 && o.ReplayedAfterRestart > 0), o.SpoolRecordsBeforeKill, o.ReplayedAfterRestart)
	w("| candidate 500s / hangs: breaker opens, traffic falls back | %s (open seen: %v / %v; fallbacks %.0f / %.0f) |\n",
		yes(o.CircuitOpenSeen["candidate-500"] && o.CircuitOpenSeen["candidate-hang"] && o.FallbacksDuring["candidate-500"] > 0 && o.FallbacksDuring["candidate-hang"] > 0),
		o.CircuitOpenSeen["candidate-500"], o.CircuitOpenSeen["candidate-hang"], o.FallbacksDuring["candidate-500"], o.FallbacksDuring["candidate-hang"])
	for _, c := range rep.counts {
		if c.Name == "candidate-cut" {
			w("| candidate cuts streams: the user sees the documented error event, the interaction is recorded as partial | %s (%d error events, %d recorded partial) |\n",
				yes(c.StreamBroken > 0 && c.Partial == c.StreamBroken), c.StreamBroken, c.Partial)
		}
	}
	w("\nOverall: **%s**", yes(len(fails) == 0))
	if len(fails) > 0 {
		w(" — %s", strings.Join(fails, "; "))
	}
	w("\n\n")

	w("## Totals\n\n| sent | answered | stream ended with the error event | failed | ids received | recorded once | missing (lost) | duplicated | in the monitor's store | incidents expected | incidents found |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	w("| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n\n", t.Sent, t.Answered, t.StreamBroken, t.Failed, t.IDs, t.Recorded, t.Missing, t.Duplicated, t.InStore, t.PII, t.Incidents)
	w("Failed requests all fall in the SIGKILL window: requests in flight when the gateway process was killed, and requests sent while no gateway process ran (the client got no answer and no interaction id, so nothing was promised to it).\n\n")

	w("## Per phase\n\n| phase | what happened | from – to | sent | answered | error event | failed | ids | recorded once | missing | dup | fallbacks | PII answered | incidents | p50 | p99 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range rep.counts {
		w("| %s | %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", c.Name, rep.phaseWhat(c.Name), rep.phaseSpan(c.Name),
			c.Sent, c.Answered, c.StreamBroken, c.Failed, c.IDs, c.Recorded, c.Missing, c.Duplicated, c.Fallbacks, c.PII, c.Incidents, c.P50, c.P99)
	}
	w("\n")
	for _, c := range rep.counts {
		if len(c.failures) == 0 {
			continue
		}
		kinds := make([]string, 0, len(c.failures))
		for k, n := range c.failures {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		w("- failed in %s: %s\n", c.Name, strings.Join(kinds, ", "))
	}

	w("\n## Streams and store\n\n")
	w("- INTERACTIONS: %d messages, %d distinct `Nats-Msg-Id`, %d duplicates, %d without an id. %d of them are interactions the client did not get a 200 for (policy denials, 502s, requests cut by the SIGKILL after the gateway recorded them).\n",
		rep.interactions.Messages, len(rep.interactions.ByID), rep.interactions.duplicates(), rep.interactions.NoMsgID, rep.notReceived)
	w("- FINDINGS: %d messages, %d distinct `Nats-Msg-Id`, %d duplicates.\n", rep.findings.Messages, len(rep.findings.ByID), rep.findingDuplicates)
	w("- Monitor store: %d interactions, %d incidents (%d extra for one interaction), %d findings (%d distinct ids); %d incidents without a PII finding.\n",
		len(rep.store.Interactions), len(rep.store.IncidentOf), rep.incidentsExtra, rep.store.Findings, rep.store.FindingIDs, rep.piiWithoutFinds)

	w("\n## Faults as observed\n\n")
	for _, p := range rep.phases {
		if len(p.Notes) > 0 {
			w("- **%s**: %s.\n", p.Name, strings.Join(p.Notes, "; "))
		}
	}
	w("- **gateway-down**: SIGKILL to a ready restarted process: %s (NATS restarted meanwhile).\n", o.GatewayDowntime)
	w("- **monitor**: SIGKILLed at %s, restarted at %s; it resumed from its durable consumer.\n", o.MonitorKilledAt, o.MonitorRestartedAt)
	w("- **candidate**: calls it received per mode: %s; requests the gateway sent straight to the baseline because the circuit was open: %d (gateway log).\n",
		fmtCalls(o.CandidateCalls), o.RefusedByOpenCircuit)
	w("- After the load: the gateway's spool drained in %s; the monitor caught up in %s. Gateway counters at the end (second process): published %.0f, spooled %.0f, replayed %.0f, lost %.0f, fallbacks %.0f.\n",
		o.DrainTime, o.MonitorCatchUp, o.FinalMetrics["stagegate_publish_published_total"], o.FinalMetrics["stagegate_publish_spooled_total"],
		o.FinalMetrics["stagegate_publish_replayed_total"], o.FinalMetrics["stagegate_publish_lost_total"], o.FinalMetrics["stagegate_gateway_fallbacks_total"])
	for k, v := range o.FinalMetrics {
		if strings.HasPrefix(k, "stagegate_gateway_circuit_open") && strings.Contains(k, `model="chaos-candidate"`) {
			state := "closed"
			if v > 0 {
				state = "still open"
			}
			w("- The candidate's circuit breaker at the end of the run: %s.\n", state)
		}
	}
	if o.LoaderSkipped > 0 {
		w("- The client skipped %d ticks because 1024 requests were already in flight.\n", o.LoaderSkipped)
	}
	w("\n## Run it\n\n```sh\nmake chaos                                   # about five minutes\nmake chaos CHAOS_ARGS='-chaos.scale=0.3'      # shorter phases\n```\n")
	return b.String()
}

func (rep *report) phaseSpan(name string) string {
	for _, p := range rep.phases {
		if p.Name == name {
			return fmt.Sprintf("%s – %s", p.Start.Round(100*time.Millisecond), p.End.Round(100*time.Millisecond))
		}
	}
	return ""
}

func (rep *report) phaseWhat(name string) string {
	for _, p := range rep.phases {
		if p.Name == name {
			return p.What
		}
	}
	return ""
}

func fmtCalls(m map[string]uint64) string {
	var parts []string
	for _, k := range []string{"ok", "500", "hang", "cut"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
