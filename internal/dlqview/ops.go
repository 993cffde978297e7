// The lines and summaries of `worker dlq replay` and `worker dlq purge`.

package dlqview

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/render"
)

// EventNote is what a replay event adds to its outcome: a note, a warning
// that the job fails again at once, an error; one line.
func EventNote(ev dlqops.ReplayEvent) string {
	note := ev.Note
	if ev.Warning != "" {
		note = strings.TrimPrefix(note+"; "+ev.Warning, "; ")
	}
	if ev.Err != nil {
		if note != "" {
			note += ": "
		}
		note += ev.Err.Error()
	}
	return render.OneLine(note)
}

// EventLine is one replay event as a line: outcome, sequence, job id,
// subject and note.
func EventLine(ev dlqops.ReplayEvent) string {
	s := fmt.Sprintf("%-16s %d  %s", ev.Outcome, ev.Record.Seq, ev.Record.JobID)
	if ev.Subject != "" && (ev.Outcome == dlqops.Replayed || ev.Outcome == dlqops.WouldReplay) {
		s += "  → " + ev.Subject
	}
	if note := EventNote(ev); note != "" {
		s += "  (" + note + ")"
	}
	return s
}

// ReplaySummary is the closing line of a replay (or dry run) and, with
// --watch, the outcomes of the replayed jobs.
func ReplaySummary(res dlqops.ReplayResult, keep bool) string {
	var b strings.Builder
	if res.DryRun {
		fmt.Fprintf(&b, "Would replay %d, already replayed %d, skipped %d", res.Replayed, res.AlreadyReplayed, res.Skipped)
		if res.Failed > 0 {
			fmt.Fprintf(&b, ", cannot replay %d", res.Failed)
		}
		b.WriteString(" (dry run: nothing changed).")
		return b.String()
	}
	fmt.Fprintf(&b, "Replayed %d, skipped %d", res.Replayed, res.Skipped+res.AlreadyReplayed)
	if res.AlreadyReplayed > 0 {
		fmt.Fprintf(&b, " (%d already replayed)", res.AlreadyReplayed)
	}
	fmt.Fprintf(&b, ", failed %d", res.Failed)
	if res.Left > 0 {
		fmt.Fprintf(&b, ", not reached %d", res.Left)
	}
	if keep {
		b.WriteString("; records kept.")
	} else {
		fmt.Fprintf(&b, "; %s deleted.", render.Plural(res.Deleted, "record"))
	}
	if t := res.Watch; t != nil {
		fmt.Fprintf(&b, "\nOutcomes of the replayed jobs: %d succeeded, %d failed again", t.Succeeded, t.FailedAgain)
		if t.Pending > 0 {
			fmt.Fprintf(&b, ", %d still running (not waited for)", t.Pending)
		}
		b.WriteString(".")
	}
	return b.String()
}

// Describe sums records up for a confirmation prompt.
func Describe(rs []dlq.Record, now time.Time) string {
	reasons := map[dlq.Reason]int{}
	functions := map[string]int{}
	oldest, newest := rs[0].FailedAt, rs[0].FailedAt
	for _, r := range rs {
		reasons[r.Reason]++
		functions[r.FunctionID]++
		oldest = minTime(oldest, r.FailedAt)
		newest = maxTime(newest, r.FailedAt)
	}
	var parts []string
	for _, r := range dlq.Reasons() {
		if reasons[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", reasons[r], r))
		}
	}
	fns := make([]string, 0, len(functions))
	for fn := range functions {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return functions[fns[i]] > functions[fns[j]] })
	var b strings.Builder
	span := render.Age(now.Sub(oldest)) + " ago"
	if a, b := render.Age(now.Sub(oldest)), render.Age(now.Sub(newest)); a != b {
		span = "between " + a + " and " + b + " ago"
	}
	fmt.Fprintf(&b, "%s match: %s; failed %s.\n", render.Plural(len(rs), "record"), strings.Join(parts, ", "), span)
	for i, fn := range fns {
		if i == 5 {
			fmt.Fprintf(&b, "  … and %d more functions\n", len(fns)-5)
			break
		}
		label := fn
		if label == "" {
			label = "(no function id)"
		}
		fmt.Fprintf(&b, "  %6d  %s\n", functions[fn], label)
	}
	return b.String()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
