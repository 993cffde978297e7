package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/jobfile"
)

// enqueueFile publishes one job per line of a .jsonl file.
func enqueueFile(cmd *cobra.Command, g *globalFlags, ef *enqueueFlags) error {
	if ef.id != "" {
		return usagef("--id names one job; give each line of %s its own \"id\"", ef.file)
	}
	tmpl, err := ef.template()
	if err != nil {
		return err
	}
	fh, err := os.Open(ef.file)
	if err != nil {
		return usageError{fmt.Errorf("--file: %w", err)}
	}
	defer fh.Close()
	total, err := client.CountJobLines(fh)
	if err != nil {
		return fmt.Errorf("read %s: %w", ef.file, err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return err
	}

	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	nc, c, err := publisher(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()

	err = jobfile.Run(ctx, c, fh, total, jobfile.Options{
		Name: ef.file, Template: tmpl, Wait: ef.wait != "", WaitFor: ef.waitFor, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
	})
	if failed := (*jobfile.Failed)(nil); errors.As(err, &failed) {
		return exitError{code: exitFailed, msg: failed.Msg}
	}
	return err
}
