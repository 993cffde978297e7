package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/job"
)

func newDlqListCmd(g *globalFlags) *cobra.Command {
	var (
		ff     filterFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [filters]",
		Short: "A table (or JSON lines) of dead-letter records, oldest first",
		Long: `List dead-letter records, oldest first: sequence, age, reason, function, last
HTTP status and OCI error code, attempts and error, cut to the terminal's
width (a pipe gets every character). --json prints one JSON object per record
instead, with every header and the attempt history. Reading changes nothing.`,
		Example: `  worker dlq list --reason exhausted --since 2h
  worker dlq list --function OCID --status 5xx --grep timeout --limit 20
  worker dlq list --json | jq -r .job_id`,
	}
	ff.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		now := time.Now()
		f, err := ff.filter(now, nil)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		sess, err := openStore(ctx, g)
		if err != nil {
			return err
		}
		defer sess.close()
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			for r, err := range sess.store.Records(ctx, f) {
				if err != nil {
					return err
				}
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}
		// Streamed in chunks: a DLQ of millions lists in bounded memory.
		ts := newTableStream(out, termWidth(out), recordColumns())
		for r, err := range sess.store.Records(ctx, f) {
			if err != nil {
				return err
			}
			if err := ts.add(recordRow(r, now)...); err != nil {
				return err
			}
		}
		if err := ts.flush(); err != nil {
			return err
		}
		if ts.rows == 0 {
			_, err := fmt.Fprintln(out, noRecords(f, sess.topo.DLQStream))
			return err
		}
		_, err = fmt.Fprintf(out, "\n%s\n", plural(ts.rows, "record"))
		return err
	}
	return cmd
}

func noRecords(f dlqops.Filter, stream string) string {
	if f.IsZero() {
		return "No dead-letter records in " + stream + "."
	}
	return "No records in " + stream + " match."
}

// recordTable is the list table.
func recordTable(recs []dlq.Record, now time.Time) *table {
	t := &table{cols: recordColumns()}
	for _, r := range recs {
		t.add(recordRow(r, now)...)
	}
	return t
}

func recordColumns() []column {
	return []column{
		{title: "SEQ", right: true},
		{title: "AGE", right: true},
		{title: "REASON"},
		{title: "FUNCTION", cut: 2, min: 16, tail: true},
		{title: "STATUS", right: true},
		{title: "CODE", cut: 3, min: 10, drop: 2},
		{title: "ATTEMPTS", right: true, drop: 1},
		{title: "ERROR", cut: 1, min: 20},
	}
}

func recordRow(r dlq.Record, now time.Time) []string {
	return []string{
		strconv.FormatUint(r.Seq, 10),
		age(now.Sub(r.FailedAt)),
		string(r.Reason),
		dash(r.FunctionID),
		statusText(r.Status),
		dash(r.Code),
		strconv.Itoa(r.Attempts),
		compactError(r.Error, r.Status, r.Code),
	}
}

var opcRequestID = regexp.MustCompile(` ?\(opc-request-id [^)]*\)`)

// compactError is an error for a table cell: one line, without what the
// status and code columns already say ("function answered 503 Code: ") and
// without the request id (show prints the error whole).
func compactError(e string, status int, code string) string {
	e = opcRequestID.ReplaceAllString(oneLine(e), "")
	full := e
	if status != 0 {
		answered := "function answered " + strconv.Itoa(status)
		if code != "" {
			e = strings.Replace(e, answered+" "+code+": ", "", 1)
			e = strings.Replace(e, answered+" "+code, "", 1)
		}
		e = strings.Replace(e, answered+": ", "", 1)
	}
	if e = strings.TrimSuffix(strings.TrimSpace(e), ":"); e == "" {
		return full // nothing but status and code: say it anyway
	}
	return e
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusText(s int) string {
	if s == 0 {
		return "-"
	}
	return strconv.Itoa(s)
}

func newDlqStatsCmd(g *globalFlags) *cobra.Command {
	var (
		ff     filterFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats [filters]",
		Short: "Records grouped by function, reason, status and error code: the first thing to run",
		Long: `Group the dead-letter records by function × reason × last status × last OCI
error code, largest groups first, with counts and the first and last failure
time. Below the table, every group's filter flags: add them to list, replay
--all or purge --all to act on exactly that group. Filters narrow what is
grouped. Reading changes nothing.`,
		Example: `  worker dlq stats
  worker dlq stats --since 1h
  worker dlq stats --json`,
	}
	ff.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		now := time.Now()
		f, err := ff.filter(now, nil)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		sess, err := openStore(ctx, g)
		if err != nil {
			return err
		}
		defer sess.close()
		st, err := sess.store.Stats(ctx, f)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			type group struct {
				dlqops.Group
				Select []string `json:"select"`
			}
			v := struct {
				Stream  string  `json:"stream"`
				Records int     `json:"records"`
				Groups  []group `json:"groups"`
			}{Stream: sess.topo.DLQStream, Records: st.Records, Groups: []group{}}
			for _, gr := range st.Groups {
				v.Groups = append(v.Groups, group{gr, selectorArgs(dlqops.GroupFilter(f, gr))})
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		if st.Records == 0 {
			_, err := fmt.Fprintln(out, noRecords(f, sess.topo.DLQStream))
			return err
		}
		return renderStats(out, st, f, sess.topo.DLQStream, now)
	}
	return cmd
}

func renderStats(out io.Writer, st dlqops.Stats, f dlqops.Filter, stream string, now time.Time) error {
	reasons := map[dlq.Reason]int{}
	functions := map[string]bool{}
	for _, gr := range st.Groups {
		reasons[gr.Reason] += gr.Count
		functions[gr.Function] = true
	}
	var byReason []string
	for _, r := range dlq.Reasons() {
		if reasons[r] > 0 {
			byReason = append(byReason, fmt.Sprintf("%d %s", reasons[r], r))
		}
	}
	scope := "in " + stream
	if !f.IsZero() {
		scope = "matching in " + stream
	}
	fmt.Fprintf(out, "%s %s: %s; %s, %s.\n\n", plural(st.Records, "record"), scope,
		strings.Join(byReason, ", "), plural(len(functions), "function"), plural(len(st.Groups), "group"))

	t := &table{cols: []column{
		{title: "#", right: true},
		{title: "COUNT", right: true},
		{title: "REASON"},
		{title: "FUNCTION", cut: 2, min: 16, tail: true},
		{title: "STATUS", right: true},
		{title: "CODE", cut: 3, min: 10},
		{title: "FIRST", right: true, drop: 2},
		{title: "LAST", right: true},
		{title: "LATEST ERROR", cut: 1, min: 16, drop: 1},
	}}
	for i, gr := range st.Groups {
		t.add(strconv.Itoa(i+1), strconv.Itoa(gr.Count), string(gr.Reason), dash(gr.Function), statusText(gr.Status),
			dash(gr.Code), age(now.Sub(gr.First)), age(now.Sub(gr.Last)), compactError(gr.Example, gr.Status, gr.Code))
	}
	if err := t.render(out, termWidth(out)); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFIRST and LAST: how long ago the group's first and latest failure happened.\n")
	fmt.Fprintf(out, "To act on a group, add its flags to list, replay --all or purge --all:\n")
	for i, gr := range st.Groups {
		fmt.Fprintf(out, "  %*d  %s\n", len(strconv.Itoa(len(st.Groups))), i+1, shellJoin(selectorArgs(dlqops.GroupFilter(f, gr))))
	}
	_, err := fmt.Fprintf(out, "For example:\n  worker dlq replay --all %s --dry-run\n", shellJoin(selectorArgs(dlqops.GroupFilter(f, st.Groups[0]))))
	return err
}

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
