package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/dlqview"
	"github.com/invoke-worker/worker/internal/render"
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
		defer sess.Close()
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			for r, err := range sess.Store.Records(ctx, f) {
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
		ts := render.NewStream(out, render.Width(out), dlqview.RecordColumns())
		for r, err := range sess.Store.Records(ctx, f) {
			if err != nil {
				return err
			}
			if err := ts.Add(dlqview.RecordRow(r, now)...); err != nil {
				return err
			}
		}
		if err := ts.Flush(); err != nil {
			return err
		}
		if ts.Rows() == 0 {
			_, err := fmt.Fprintln(out, dlqview.NoRecords(f, sess.Topo.DLQStream))
			return err
		}
		_, err = fmt.Fprintf(out, "\n%s\n", render.Plural(ts.Rows(), "record"))
		return err
	}
	return cmd
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
		defer sess.Close()
		st, err := sess.Store.Stats(ctx, f)
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
			}{Stream: sess.Topo.DLQStream, Records: st.Records, Groups: []group{}}
			for _, gr := range st.Groups {
				v.Groups = append(v.Groups, group{gr, dlqview.SelectorArgs(dlqops.GroupFilter(f, gr))})
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		if st.Records == 0 {
			_, err := fmt.Fprintln(out, dlqview.NoRecords(f, sess.Topo.DLQStream))
			return err
		}
		return dlqview.Stats(out, st, f, sess.Topo.DLQStream, now)
	}
	return cmd
}
