// A record in full, for `worker dlq show`.

package dlqview

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/render"
	"github.com/invoke-worker/worker/job"
)

// hexDumpLimit bounds the hex dump of a binary body; --out writes it whole.
const hexDumpLimit = 4096

// Record prints r whole: a summary, every header, the attempt history as
// a table, and the body (withBody) as text or a hex dump of its start.
// marker, when not nil, says the record was replayed.
func Record(out io.Writer, r dlq.Record, marker *dlqops.ReplayMarker, stream string, now time.Time, withBody bool) error {
	fmt.Fprintf(out, "Record %d in %s  (%s)\n\n", r.Seq, stream, r.Subject)
	width := render.Width(out)
	var kv [][2]string
	add := func(k, v string) { kv = append(kv, [2]string{k, v}) }
	add("reason", string(r.Reason))
	add("job", r.JobID)
	add("function", Dash(r.FunctionID))
	status := StatusText(r.Status)
	if r.Code != "" {
		status += "  " + r.Code
	}
	add("last status", status)
	add("attempts", strconv.Itoa(r.Attempts))
	add("error", Dash(r.Error))
	add("failed at", render.When(r.FailedAt, now))
	add("first seen", render.When(r.FirstSeenAt, now))
	add("stored at", render.When(r.StoredAt, now))
	add("worker", Dash(r.Worker))
	from := Dash(r.OriginalSubject)
	if r.OriginalSeq != 0 {
		from += fmt.Sprintf(", sequence %d", r.OriginalSeq)
	}
	add("came from", from)
	if r.ReplayCount > 0 {
		add("replays", fmt.Sprintf("replayed %s before this record", render.Plural(r.ReplayCount, "time")))
	}
	if marker != nil {
		add("replayed", fmt.Sprintf("yes, %s, as jobs sequence %d (record kept)", render.When(marker.ReplayedAt, now), marker.JobsSeq))
	}
	for _, p := range kv {
		render.WrapIndented(out, 2, p[0], 13, p[1], width)
	}

	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	fmt.Fprintf(out, "\nHeaders (%d)\n", len(keys))
	for _, k := range keys {
		for _, v := range r.Header[k] {
			if strings.EqualFold(k, dlq.HeaderAttemptHistory) && r.HistoryErr == nil {
				v = fmt.Sprintf("[%s, below]", render.Plural(len(r.History), "attempt"))
			}
			render.WrapIndented(out, 2, k+": ", 0, v, width)
		}
	}

	fmt.Fprintf(out, "\nAttempt history")
	switch {
	case r.HistoryErr != nil:
		fmt.Fprintf(out, ": unreadable (%v)\n", r.HistoryErr)
	case len(r.History) == 0:
		fmt.Fprintf(out, ": none recorded\n")
	default:
		fmt.Fprintf(out, " (%s)\n", render.Plural(len(r.History), "attempt"))
		if err := renderIndented(out, historyTable(r.History)); err != nil {
			return err
		}
	}

	if !withBody {
		return nil
	}
	ct := job.Lookup(r.Header, job.HeaderContentType)
	if ct != "" {
		ct = ", " + ct
	}
	switch {
	case len(r.Body) == 0:
		fmt.Fprintf(out, "\nBody: empty\n")
	case render.IsText(r.Body):
		fmt.Fprintf(out, "\nBody (%s, text%s)\n", render.Plural(len(r.Body), "byte"), ct)
		if _, err := out.Write(r.Body); err != nil {
			return err
		}
		if r.Body[len(r.Body)-1] != '\n' {
			fmt.Fprintln(out)
		}
	default:
		fmt.Fprintf(out, "\nBody (%s, binary%s)", render.Plural(len(r.Body), "byte"), ct)
		b := r.Body
		if len(b) > hexDumpLimit {
			fmt.Fprintf(out, ": the first %d bytes; --out FILE writes it whole", hexDumpLimit)
			b = b[:hexDumpLimit]
		}
		fmt.Fprintln(out)
		if _, err := io.WriteString(out, hex.Dump(b)); err != nil {
			return err
		}
	}
	return nil
}

func historyTable(h []dlq.Attempt) *render.Table {
	sameDay := true
	for _, a := range h {
		sameDay = sameDay && a.At.UTC().Format(time.DateOnly) == h[0].At.UTC().Format(time.DateOnly)
	}
	layout := "2006-01-02 15:04:05.000"
	if sameDay {
		layout = "15:04:05.000"
	}
	t := &render.Table{Cols: []render.Column{
		{Title: "#", Right: true},
		{Title: "AT (UTC)"},
		{Title: "DURATION", Right: true},
		{Title: "STATUS", Right: true},
		{Title: "CODE", Cut: 2, Min: 10},
		{Title: "WORKER", Cut: 3, Min: 10, Middle: true},
		{Title: "BREAKER"},
		{Title: "ERROR", Cut: 1, Min: 20},
	}}
	for _, a := range h {
		at := "-"
		if !a.At.IsZero() {
			at = a.At.UTC().Format(layout)
		}
		t.Add(strconv.Itoa(a.N), at, (time.Duration(a.DurationMs) * time.Millisecond).String(), StatusText(a.Status),
			Dash(a.Code), Dash(a.Worker), Dash(a.Breaker), Dash(compactError(a.Error, a.Status, a.Code)))
	}
	return t
}

// renderIndented renders t two spaces in, without the title line when the
// titles are empty.
func renderIndented(out io.Writer, t *render.Table) error {
	var b strings.Builder
	width := render.Width(out)
	if width > 0 {
		width -= 2
	}
	if err := t.Render(&b, width); err != nil {
		return err
	}
	lines := strings.SplitAfter(b.String(), "\n")
	if strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for _, l := range lines {
		if l != "" {
			if _, err := io.WriteString(out, "  "+l); err != nil {
				return err
			}
		}
	}
	return nil
}
