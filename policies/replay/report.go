package replay

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// kindNames are the table's names of the change kinds.
var kindNames = map[string]string{
	AllowedToDenied:    "allowed → denied",
	DeniedToAllowed:    "denied → allowed",
	RouteChanged:       "route changed",
	ObligationsChanged: "obligations changed",
	ReasonsChanged:     "reasons changed",
}

// WriteTable writes the report for a person.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "candidate revision   %s\n", r.Candidate)
	fmt.Fprintf(&b, "recorded revisions   %s\n", formatCounts(r.RecordedRevisions, 4))
	fmt.Fprintf(&b, "interactions read    %s (replayed %s; skipped %s without a recorded policy input)\n",
		thousands(r.Read), thousands(r.Replayed), thousands(r.Skipped))
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "change\tcount\tdetail\texamples")
	fmt.Fprintf(tw, "unchanged\t%s\t\t\n", thousands(r.Unchanged))
	for _, g := range r.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", kindNames[g.Kind], thousands(g.Count), formatCounts(g.Detail, 3), strings.Join(g.Examples, " "))
	}
	fmt.Fprintf(tw, "errors\t%s\t\t%s\n", thousands(r.Errors), strings.Join(r.ErrorExamples, "; "))
	if r.InputMismatch > 0 {
		fmt.Fprintf(tw, "input hash mismatch\t%s\t\t\n", thousands(r.InputMismatch))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\n%s of %s replayed decisions would change; took %.1fs, memo hit rate %.0f%%\n",
		thousands(r.Changed()), thousands(r.Replayed), r.Seconds, 100*r.MemoHitRate)
	_, err := io.WriteString(w, b.String())
	return err
}

// formatCounts lists the largest counts first: "a 10, b 3, … (+2 more)".
func formatCounts(m map[string]int, limit int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, limit+1)
	for i, k := range keys {
		if i == limit {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(keys)-limit))
			break
		}
		parts = append(parts, k+" "+thousands(m[k]))
	}
	return strings.Join(parts, ", ")
}

// thousands writes n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
