package sandbox

import "time"

// storeDegradedFor: a transient store failure this recent marks the store
// "degraded" in /readyz (still ready: writes are being retried).
const storeDegradedFor = time.Minute

// healthDetails adds what /readyz knows beyond up or down: the store's write
// retries, the publish spool and the key table. It may refine checks (never
// to not-ready: a degraded part still serves).
func (s *Sandbox) healthDetails(checks map[string]string) map[string]any {
	d := map[string]any{}
	if rs := s.storeRetry; rs != nil {
		st := rs.Stats()
		d["store_writes"] = st
		if checks["store"] == "ok" && !st.LastErrorAt.IsZero() && s.clk.Now().Sub(st.LastErrorAt) < storeDegradedFor {
			checks["store"] = "degraded: writes retried after busy or dropped connections"
		}
	}
	if p := s.publisher; p != nil {
		st := p.Stats()
		d["publish"] = map[string]any{
			"degraded": st.Degraded, "spool_records": st.SpoolRecords, "spool_bytes": st.SpoolBytes,
			"spool_oldest_seconds": st.SpoolOldest.Seconds(), "spool_full": st.SpoolFull, "lost": st.Lost,
		}
		switch {
		case st.SpoolFull:
			checks["spool"] = "full: fail-closed trials refuse requests"
		case st.Degraded:
			checks["spool"] = "replaying"
		default:
			checks["spool"] = "ok"
		}
	}
	if k := s.keys; k != nil {
		d["api_keys"] = map[string]int64{"table": k.size.Load(), "stored": k.stored.Load()}
	}
	return d
}
