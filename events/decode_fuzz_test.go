package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stagegate/stagegate/events"
)

// FuzzDecodeFinding: whatever a FINDINGS message holds, decoding never panics,
// and what it accepts has the fields every consumer relies on.
func FuzzDecodeFinding(f *testing.F) {
	good, _ := json.Marshal(events.Finding{Schema: events.SchemaFinding, ID: "f1", InteractionID: "int_1", Trial: "t1", Model: "m",
		Detector: "pii", DetectorVersion: "1", Category: "pii", Severity: events.SeverityHigh, Score: 0.9,
		Spans: []events.Span{{Field: "response", Start: 1, End: 4}}, CreatedAt: time.Unix(1, 0).UTC()})
	f.Add(good)
	f.Add([]byte(`{"schema":"stagegate.finding.v1","id":"f","interaction_id":"i","detector":"d","category":"c","severity":"bogus","score":2}`))
	f.Add([]byte(`{"schema":"stagegate.finding.v1","spans":[{"field":"prompt","start":5,"end":1}]}`))
	f.Add([]byte(`{"schema":"stagegate.interaction.v1"}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fd, err := events.DecodeFinding(data)
		if err != nil {
			return
		}
		if fd.ID == "" || fd.InteractionID == "" || fd.Detector == "" || fd.Category == "" ||
			events.SeverityRank(fd.Severity) == 0 || fd.Score < 0 || fd.Score > 1 {
			t.Fatalf("accepted an invalid finding: %+v", fd)
		}
		for _, s := range fd.Spans {
			if s.Start < 0 || s.End < s.Start || (s.Field != "prompt" && s.Field != "response") {
				t.Fatalf("accepted a malformed span: %+v", s)
			}
		}
	})
}
