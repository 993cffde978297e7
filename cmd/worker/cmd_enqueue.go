package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// waitForever is the value --wait takes without "=DUR".
const waitForever = "forever"

func newEnqueueCmd(g *globalFlags) *cobra.Command {
	var (
		function, subject, body, file, intent, id, contentType, wait string
		detached                                                     bool
		headers                                                      []string
	)
	cmd := &cobra.Command{
		Use:   "enqueue --function OCID [--body TEXT | --file PATH|-] [flags]",
		Short: "Publish one job; with --wait, print its result",
		Long: `Publish one invocation job and print its job id. With --wait, wait for the
outcome: print the result body and exit 0, or print the dead-letter reason and
exit 1. --wait alone waits as long as it takes; --wait=30s gives up after 30s
(exit 1).`,
		Example: `  worker enqueue --function ocid1.fnfunc.oc1.dev.aaaaaaaaecho --body hello --wait
  echo '{"n":1}' | worker enqueue --function OCID --file - --header Content-Type=application/json`,
	}
	f := cmd.Flags()
	f.StringVar(&function, "function", "", "function OCID (required)")
	f.StringVar(&subject, "subject", queue.DefaultJobSubject, "subject to publish to (under invoke.jobs.>)")
	f.StringVar(&body, "body", "", "request body as text")
	f.StringVar(&file, "file", "", "read the request body from a file, or - for standard input")
	f.StringVar(&intent, "intent", "", "Fn-Intent: httprequest or cloudevent")
	f.BoolVar(&detached, "detached", false, "detached invocation (Fn-Invoke-Type: detached)")
	f.StringVar(&id, "id", "", "job id (also the dedupe id); default: a random id")
	f.StringVar(&contentType, "content-type", "", "Content-Type passed to the function")
	f.StringArrayVar(&headers, "header", nil, "extra header K=V (repeatable)")
	f.StringVar(&wait, "wait", "", "wait for the outcome; --wait=DUR bounds the wait")
	f.Lookup("wait").NoOptDefVal = waitForever

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if function == "" {
			return usagef("--function is required")
		}
		if body != "" && file != "" {
			return usagef("--body and --file exclude each other")
		}
		var waitFor time.Duration
		if wait != "" && wait != waitForever {
			d, err := time.ParseDuration(wait)
			if err != nil || d <= 0 {
				return usagef("--wait=%s: want a positive duration such as 30s", wait)
			}
			waitFor = d
		}
		data := []byte(body)
		if file != "" {
			var err error
			if data, err = readBody(file, cmd.InOrStdin()); err != nil {
				return err
			}
		}
		hdr := nats.Header{}
		for _, kv := range headers {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("--header %q: want K=V", kv)
			}
			hdr.Add(k, v)
		}
		j := queue.Job{FunctionID: function, Subject: subject, ID: id, Body: data, Intent: intent, ContentType: contentType, Header: hdr}
		if detached {
			j.InvokeType = job.InvokeTypeDetached
		}
		if _, err := j.Message(); err != nil {
			return usageError{err}
		}

		cfg, err := loadConfig(g)
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, os.Stderr)
		ctx := cmd.Context()
		nc, js, err := clientConn(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer nc.Close()
		topo := topology(cfg)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := queue.CheckStreams(pctx, js, topo); err != nil {
			return err
		}
		jobID, err := queue.NewPublisher(js).Enqueue(pctx, j)
		if err != nil {
			return err
		}
		if wait == "" {
			_, err = fmt.Fprintln(cmd.OutOrStdout(), jobID)
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "enqueued %s; waiting for its outcome\n", jobID)
		wctx := ctx
		if waitFor > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, waitFor)
			defer cancel()
		}
		out, err := queue.Await(wctx, js, topo, jobID)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return exitError{code: exitFailed, msg: fmt.Sprintf("worker: no outcome for %s after %s (it may still complete)", jobID, waitFor)}
			}
			return err
		}
		if out.DeadLettered {
			msg := fmt.Sprintf("dead-lettered: %s", out.Reason)
			if s := out.Header.Get(job.HeaderStatus); s != "" {
				msg += " (status " + s + ")"
			}
			if e := out.Error(); e != "" {
				msg += ": " + e
			}
			return exitError{code: exitFailed, msg: msg}
		}
		w := cmd.OutOrStdout()
		if _, err := w.Write(out.Data); err != nil {
			return err
		}
		if len(out.Data) > 0 && out.Data[len(out.Data)-1] != '\n' && isTerminal(w) {
			_, _ = io.WriteString(w, "\n")
		}
		return nil
	}
	return cmd
}

func readBody(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--file: %w", err)}
	}
	return b, nil
}

// isTerminal reports whether w is a character device, where a missing
// final newline would garble the prompt; pipes get the body byte for byte.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
