// Package dlqview is what the `worker dlq` commands print: the list and
// stats tables of dead-letter records, the filter flags that select a
// group, a record in full, the lines and summaries of a replay and the
// summary a purge asks to confirm. Text for an operator's terminal, drawn
// with internal/render.
//
// It owns no operation on the stream (dlq/dlqops does those) and no flag
// parsing (cmd/worker).
package dlqview

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/render"
)

// NoRecords is what list, stats, replay and purge say when f selects
// nothing.
func NoRecords(f dlqops.Filter, stream string) string {
	if f.IsZero() {
		return "No dead-letter records in " + stream + "."
	}
	return "No records in " + stream + " match."
}

// RecordTable is the list table.
func RecordTable(recs []dlq.Record, now time.Time) *render.Table {
	t := &render.Table{Cols: RecordColumns()}
	for _, r := range recs {
		t.Add(RecordRow(r, now)...)
	}
	return t
}

// RecordColumns are the list table's columns, in the order they give way
// to a narrow terminal.
func RecordColumns() []render.Column {
	return []render.Column{
		{Title: "SEQ", Right: true},
		{Title: "AGE", Right: true},
		{Title: "REASON"},
		{Title: "FUNCTION", Cut: 2, Min: 16, Tail: true},
		{Title: "STATUS", Right: true},
		{Title: "CODE", Cut: 3, Min: 10, Drop: 2},
		{Title: "ATTEMPTS", Right: true, Drop: 1},
		{Title: "ERROR", Cut: 1, Min: 20},
	}
}

// RecordRow is r as a row of the list table.
func RecordRow(r dlq.Record, now time.Time) []string {
	return []string{
		strconv.FormatUint(r.Seq, 10),
		render.Age(now.Sub(r.FailedAt)),
		string(r.Reason),
		Dash(r.FunctionID),
		StatusText(r.Status),
		Dash(r.Code),
		strconv.Itoa(r.Attempts),
		compactError(r.Error, r.Status, r.Code),
	}
}

var opcRequestID = regexp.MustCompile(` ?\(opc-request-id [^)]*\)`)

// compactError is an error for a table cell: one line, without what the
// status and code columns already say ("function answered 503 Code: ") and
// without the request id (show prints the error whole).
func compactError(e string, status int, code string) string {
	e = opcRequestID.ReplaceAllString(render.OneLine(e), "")
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

// Dash is s, or "-" for nothing.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// StatusText is an HTTP status, or "-" for none (no answer).
func StatusText(s int) string {
	if s == 0 {
		return "-"
	}
	return strconv.Itoa(s)
}

// Stats prints the stats table (largest groups first) and, for every
// group, the filter flags that select it.
func Stats(out io.Writer, st dlqops.Stats, f dlqops.Filter, stream string, now time.Time) error {
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
	fmt.Fprintf(out, "%s %s: %s; %s, %s.\n\n", render.Plural(st.Records, "record"), scope,
		strings.Join(byReason, ", "), render.Plural(len(functions), "function"), render.Plural(len(st.Groups), "group"))

	t := &render.Table{Cols: []render.Column{
		{Title: "#", Right: true},
		{Title: "COUNT", Right: true},
		{Title: "REASON"},
		{Title: "FUNCTION", Cut: 2, Min: 16, Tail: true},
		{Title: "STATUS", Right: true},
		{Title: "CODE", Cut: 3, Min: 10},
		{Title: "FIRST", Right: true, Drop: 2},
		{Title: "LAST", Right: true},
		{Title: "LATEST ERROR", Cut: 1, Min: 16, Drop: 1},
	}}
	for i, gr := range st.Groups {
		t.Add(strconv.Itoa(i+1), strconv.Itoa(gr.Count), string(gr.Reason), Dash(gr.Function), StatusText(gr.Status),
			Dash(gr.Code), render.Age(now.Sub(gr.First)), render.Age(now.Sub(gr.Last)), compactError(gr.Example, gr.Status, gr.Code))
	}
	if err := t.Render(out, render.Width(out)); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFIRST and LAST: how long ago the group's first and latest failure happened.\n")
	fmt.Fprintf(out, "To act on a group, add its flags to list, replay --all or purge --all:\n")
	for i, gr := range st.Groups {
		fmt.Fprintf(out, "  %*d  %s\n", len(strconv.Itoa(len(st.Groups))), i+1, ShellJoin(SelectorArgs(dlqops.GroupFilter(f, gr))))
	}
	_, err := fmt.Fprintf(out, "For example:\n  worker dlq replay --all %s --dry-run\n", ShellJoin(SelectorArgs(dlqops.GroupFilter(f, st.Groups[0]))))
	return err
}

// SelectorArgs are the flags that select exactly what f selects (sequences
// aside), for an operator to paste.
func SelectorArgs(f dlqops.Filter) []string {
	var out []string
	add := func(flag string, vs []string) {
		for _, v := range vs {
			out = append(out, "--"+flag, v)
		}
	}
	for _, r := range f.Reasons {
		add("reason", []string{string(r)})
	}
	add("function", f.Functions)
	add("status", f.Statuses)
	add("code", f.Codes)
	if !f.Since.IsZero() {
		add("since", []string{f.Since.UTC().Format(time.RFC3339Nano)})
	}
	if !f.Until.IsZero() {
		add("until", []string{f.Until.UTC().Format(time.RFC3339Nano)})
	}
	if f.Grep != "" {
		add("grep", []string{f.Grep})
	}
	return out
}

// ShellJoin quotes what a shell would split or expand.
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/=+,@", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
