package dlqops

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
)

// Group is the records sharing one failure signature: function, reason,
// last status and last OCI error code.
type Group struct {
	Function string     `json:"function_id,omitempty"`
	Reason   dlq.Reason `json:"reason"`
	Status   int        `json:"status,omitempty"`
	Code     string     `json:"code,omitempty"`

	Count int `json:"count"`
	// First and Last are the earliest and latest failure times.
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
	// FirstSeq and LastSeq bound the group's sequences.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Example is the error text of the group's latest record.
	Example string `json:"example_error,omitempty"`
}

// Stats is the dead-letter stream grouped by failure signature.
type Stats struct {
	// Records is how many records matched.
	Records int `json:"records"`
	// Groups are ordered largest first, then most recent first.
	Groups []Group `json:"groups"`
}

type groupKey struct {
	function string
	reason   dlq.Reason
	status   int
	code     string
}

// Stats groups the records f selects by function × reason × status × code.
// Each group's records are selected again by GroupFilter(f, group).
func (s *Store) Stats(ctx context.Context, f Filter) (Stats, error) {
	var st Stats
	groups := map[groupKey]*Group{}
	for r, err := range s.Records(ctx, f) {
		if err != nil {
			return Stats{}, err
		}
		st.Records++
		// Codes match case-insensitively, so they group that way too.
		k := groupKey{r.FunctionID, r.Reason, r.Status, strings.ToLower(r.Code)}
		g, ok := groups[k]
		if !ok {
			g = &Group{Function: r.FunctionID, Reason: r.Reason, Status: r.Status, Code: r.Code, First: r.FailedAt, FirstSeq: r.Seq}
			groups[k] = g
		}
		g.Count++
		if r.FailedAt.Before(g.First) {
			g.First = r.FailedAt
		}
		if !r.FailedAt.Before(g.Last) {
			g.Last, g.Example = r.FailedAt, r.Error
		}
		g.LastSeq = r.Seq
	}
	for _, g := range groups {
		st.Groups = append(st.Groups, *g)
	}
	slices.SortFunc(st.Groups, func(a, b Group) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			b.Last.Compare(a.Last),
			cmp.Compare(a.Function, b.Function),
			cmp.Compare(a.Reason, b.Reason),
			cmp.Compare(a.Status, b.Status),
			cmp.Compare(a.Code, b.Code),
		)
	})
	return st, nil
}
