// worker dlq show: one record, whole.

package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/job"
)

// hexDumpLimit bounds the hex dump of a binary body; --out writes it whole.
const hexDumpLimit = 4096

func newDlqShowCmd(g *globalFlags) *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "One record: every header, the attempt history, and the body",
		Long: `Show one dead-letter record: a summary, every header, the attempt history as a
table, and the body: as text when it is UTF-8 text, else as a hex dump of its
first 4 KiB. --out FILE writes the body, byte for byte, to FILE instead.`,
		Example: `  worker dlq show 42
  worker dlq show 42 --out body.bin`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("show takes one record sequence (SEQ), e.g. worker dlq show 42")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&outFile, "out", "", "write the body to FILE (byte for byte) instead of printing it")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		seq, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || seq == 0 {
			return usagef("SEQ %q: want a record sequence such as 42 (see worker dlq list)", args[0])
		}
		ctx := cmd.Context()
		sess, err := openStore(ctx, g)
		if err != nil {
			return err
		}
		defer sess.close()
		r, err := sess.store.Get(ctx, seq)
		if err != nil {
			return err
		}
		marker, err := sess.store.ReplayMarker(ctx, r)
		if err != nil {
			sess.log.Warn().Err(err).Msg("could not check whether the record was replayed")
		}
		out := cmd.OutOrStdout()
		if err := renderRecord(out, r, marker, sess.topo.DLQStream, time.Now(), outFile == ""); err != nil {
			return err
		}
		if outFile != "" {
			if err := os.WriteFile(outFile, r.Body, 0o600); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			_, err = fmt.Fprintf(out, "\nBody: %s written to %s\n", plural(len(r.Body), "byte"), outFile)
			return err
		}
		return nil
	}
	return cmd
}

func renderRecord(out io.Writer, r dlq.Record, marker *dlqops.ReplayMarker, stream string, now time.Time, withBody bool) error {
	fmt.Fprintf(out, "Record %d in %s  (%s)\n\n", r.Seq, stream, r.Subject)
	width := termWidth(out)
	var kv [][2]string
	add := func(k, v string) { kv = append(kv, [2]string{k, v}) }
	add("reason", string(r.Reason))
	add("job", r.JobID)
	add("function", dash(r.FunctionID))
	status := statusText(r.Status)
	if r.Code != "" {
		status += "  " + r.Code
	}
	add("last status", status)
	add("attempts", strconv.Itoa(r.Attempts))
	add("error", dash(r.Error))
	add("failed at", when(r.FailedAt, now))
	add("first seen", when(r.FirstSeenAt, now))
	add("stored at", when(r.StoredAt, now))
	add("worker", dash(r.Worker))
	from := dash(r.OriginalSubject)
	if r.OriginalSeq != 0 {
		from += fmt.Sprintf(", sequence %d", r.OriginalSeq)
	}
	add("came from", from)
	if r.ReplayCount > 0 {
		add("replays", fmt.Sprintf("replayed %s before this record", plural(r.ReplayCount, "time")))
	}
	if marker != nil {
		add("replayed", fmt.Sprintf("yes, %s, as jobs sequence %d (record kept)", when(marker.ReplayedAt, now), marker.JobsSeq))
	}
	for _, p := range kv {
		wrapIndented(out, 2, p[0], 13, p[1], width)
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
				v = fmt.Sprintf("[%s, below]", plural(len(r.History), "attempt"))
			}
			wrapIndented(out, 2, k+": ", 0, v, width)
		}
	}

	fmt.Fprintf(out, "\nAttempt history")
	switch {
	case r.HistoryErr != nil:
		fmt.Fprintf(out, ": unreadable (%v)\n", r.HistoryErr)
	case len(r.History) == 0:
		fmt.Fprintf(out, ": none recorded\n")
	default:
		fmt.Fprintf(out, " (%s)\n", plural(len(r.History), "attempt"))
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
	case isText(r.Body):
		fmt.Fprintf(out, "\nBody (%s, text%s)\n", plural(len(r.Body), "byte"), ct)
		if _, err := out.Write(r.Body); err != nil {
			return err
		}
		if r.Body[len(r.Body)-1] != '\n' {
			fmt.Fprintln(out)
		}
	default:
		fmt.Fprintf(out, "\nBody (%s, binary%s)", plural(len(r.Body), "byte"), ct)
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

func historyTable(h []dlq.Attempt) *table {
	sameDay := true
	for _, a := range h {
		sameDay = sameDay && a.At.UTC().Format(time.DateOnly) == h[0].At.UTC().Format(time.DateOnly)
	}
	layout := "2006-01-02 15:04:05.000"
	if sameDay {
		layout = "15:04:05.000"
	}
	t := &table{cols: []column{
		{title: "#", right: true},
		{title: "AT (UTC)"},
		{title: "DURATION", right: true},
		{title: "STATUS", right: true},
		{title: "CODE", cut: 2, min: 10},
		{title: "WORKER", cut: 3, min: 10, middle: true},
		{title: "BREAKER"},
		{title: "ERROR", cut: 1, min: 20},
	}}
	for _, a := range h {
		at := "-"
		if !a.At.IsZero() {
			at = a.At.UTC().Format(layout)
		}
		t.add(strconv.Itoa(a.N), at, (time.Duration(a.DurationMs) * time.Millisecond).String(), statusText(a.Status),
			dash(a.Code), dash(a.Worker), dash(a.Breaker), dash(compactError(a.Error, a.Status, a.Code)))
	}
	return t
}

// renderIndented renders t two spaces in, without the title line when the
// titles are empty.
func renderIndented(out io.Writer, t *table) error {
	var b strings.Builder
	width := termWidth(out)
	if width > 0 {
		width -= 2
	}
	if err := t.render(&b, width); err != nil {
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
