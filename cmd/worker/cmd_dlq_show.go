// worker dlq show: one record, whole.

package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/invoke-worker/worker/internal/dlqview"
	"github.com/invoke-worker/worker/internal/render"
	"github.com/spf13/cobra"
)

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
		defer sess.Close()
		r, err := sess.Store.Get(ctx, seq)
		if err != nil {
			return err
		}
		marker, err := sess.Store.ReplayMarker(ctx, r)
		if err != nil {
			sess.Log.Warn().Err(err).Msg("could not check whether the record was replayed")
		}
		out := cmd.OutOrStdout()
		if err := dlqview.Record(out, r, marker, sess.Topo.DLQStream, time.Now(), outFile == ""); err != nil {
			return err
		}
		if outFile != "" {
			if err := os.WriteFile(outFile, r.Body, 0o600); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			_, err = fmt.Fprintf(out, "\nBody: %s written to %s\n", render.Plural(len(r.Body), "byte"), outFile)
			return err
		}
		return nil
	}
	return cmd
}
