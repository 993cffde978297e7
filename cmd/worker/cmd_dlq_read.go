package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
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
