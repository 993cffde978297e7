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

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/internal/render"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/service"
)

// waitForever is the value --wait takes without "=DUR".
const waitForever = "forever"

// enqueueFlags are the enqueue command's flags.
type enqueueFlags struct {
	function, subject, body, file, intent, id, contentType, wait string
	detached                                                     bool
	headers                                                      []string
	waitFor                                                      time.Duration // 0: as long as it takes
}

// template is the job the flags describe; with --file *.jsonl, the
// defaults of every line.
func (ef *enqueueFlags) template() (client.Job, error) {
	hdr := nats.Header{}
	for _, kv := range ef.headers {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return client.Job{}, usagef("--header %q: want K=V", kv)
		}
		hdr.Add(k, v)
	}
	j := client.Job{FunctionID: ef.function, Subject: ef.subject, ID: ef.id, Intent: ef.intent, ContentType: ef.contentType, Header: hdr}
	if ef.detached {
		j.InvokeType = job.InvokeTypeDetached
	}
	return j, nil
}

func newEnqueueCmd(g *globalFlags) *cobra.Command {
	ef := &enqueueFlags{}
	cmd := &cobra.Command{
		Use:   "enqueue --function OCID [--body TEXT | --file PATH|-] [flags]",
		Short: "Publish one job (or one per line of a .jsonl file); with --wait, print the outcome",
		Long: `Publish one invocation job and print its job id. With --wait, wait for the
outcome: print the result body and exit 0, or print the dead-letter reason and
exit 1. --wait alone waits as long as it takes; --wait=30s gives up after 30s
(exit 1). A body too large for a NATS message goes through the object store.

With --file PATH.jsonl, publish one job per line, each line a JSON object:
  {"function": "ocid1.fnfunc...", "id": "job-1", "subject": "invoke.jobs.x",
   "intent": "cloudevent", "headers": {"Content-Type": "application/json"},
   "body": "text" | {"any": "JSON"} | ..., "body_base64": "AAEC"}
Every key is optional but function (which --function may give for every
line); the other flags are defaults too, and a line's headers win over
--header. A JSON body other than a string is sent as JSON (Content-Type
application/json unless given). Job ids go to stdout, in line order; lines
that cannot be enqueued are reported on stderr with their line numbers and
make the command exit 1 once every other line is enqueued. With --wait, one
JSON line per outcome goes to stdout ({"line", "id", "outcome", "status",
"reason", "error"}) and a count of succeeded and failed jobs to stderr; any
failure exits 1. A progress bar is drawn on stderr when it is a terminal and
stdout is not.`,
		Example: `  worker enqueue --function ocid1.fnfunc.oc1.dev.aaaaaaaaecho --body hello --wait
  echo '{"n":1}' | worker enqueue --function OCID --file - --header Content-Type=application/json
  worker enqueue --file jobs.jsonl --wait=10m > outcomes.jsonl`,
	}
	f := cmd.Flags()
	f.StringVar(&ef.function, "function", "", "function OCID (required, except in a .jsonl file's lines)")
	f.StringVar(&ef.subject, "subject", queue.DefaultJobSubject, "subject to publish to (under invoke.jobs.>)")
	f.StringVar(&ef.body, "body", "", "request body as text")
	f.StringVar(&ef.file, "file", "", "read the request body from a file, or - for standard input; a .jsonl file holds one job per line")
	f.StringVar(&ef.intent, "intent", "", "Fn-Intent: httprequest or cloudevent")
	f.BoolVar(&ef.detached, "detached", false, "detached invocation (Fn-Invoke-Type: detached)")
	f.StringVar(&ef.id, "id", "", "job id (also the dedupe id); default: a random id")
	f.StringVar(&ef.contentType, "content-type", "", "Content-Type passed to the function")
	f.StringArrayVar(&ef.headers, "header", nil, "extra header K=V (repeatable)")
	f.StringVar(&ef.wait, "wait", "", "wait for the outcome; --wait=DUR bounds the wait")
	f.Lookup("wait").NoOptDefVal = waitForever

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if ef.body != "" && ef.file != "" {
			return usagef("--body and --file exclude each other")
		}
		if ef.wait != "" && ef.wait != waitForever {
			d, err := time.ParseDuration(ef.wait)
			if err != nil || d <= 0 {
				return usagef("--wait=%s: want a positive duration such as 30s", ef.wait)
			}
			ef.waitFor = d
		}
		if strings.HasSuffix(ef.file, ".jsonl") {
			return enqueueFile(cmd, g, ef)
		}
		return enqueueOne(cmd, g, ef)
	}
	return cmd
}

// enqueueOne publishes the job the flags describe.
func enqueueOne(cmd *cobra.Command, g *globalFlags, ef *enqueueFlags) error {
	if ef.function == "" {
		return usagef("--function is required")
	}
	j, err := ef.template()
	if err != nil {
		return err
	}
	j.Body = []byte(ef.body)
	if ef.file != "" {
		if j.Body, err = readBody(ef.file, cmd.InOrStdin()); err != nil {
			return err
		}
	}
	if _, err := j.Message(); err != nil {
		return usageError{err}
	}

	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	if int64(len(j.Body)) > int64(cfg.Invoke.RequestLimit) {
		return usagef("the body is %d bytes, over invoke.request_limit (%s): the function service would refuse it", len(j.Body), cfg.Invoke.RequestLimit)
	}
	ctx := cmd.Context()
	nc, c, err := publisher(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jobID, err := c.Enqueue(pctx, j)
	if err != nil {
		return err
	}
	if ef.wait == "" {
		_, err = fmt.Fprintln(cmd.OutOrStdout(), jobID)
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "enqueued %s; waiting for its outcome\n", jobID)
	wctx := ctx
	if ef.waitFor > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, ef.waitFor)
		defer cancel()
	}
	out, err := c.Await(wctx, jobID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return exitError{code: exitFailed, msg: fmt.Sprintf("worker: no outcome for %s after %s (it may still complete)", jobID, ef.waitFor)}
		}
		return err
	}
	if out.DeadLettered {
		msg := fmt.Sprintf("dead-lettered: %s", out.Reason)
		if out.Status != 0 {
			msg += fmt.Sprintf(" (status %d)", out.Status)
		}
		if out.Error != "" {
			msg += ": " + out.Error
		}
		return exitError{code: exitFailed, msg: msg}
	}
	w := cmd.OutOrStdout()
	if _, err := w.Write(out.Body); err != nil {
		return err
	}
	if len(out.Body) > 0 && out.Body[len(out.Body)-1] != '\n' && render.IsCharDevice(w) {
		_, _ = io.WriteString(w, "\n")
	}
	return nil
}

// publisher connects a client for enqueue: the streams must exist.
func publisher(ctx context.Context, cfg config.Config) (*nats.Conn, *client.Client, error) {
	log := newLogger(cfg.Log, os.Stderr)
	nc, _, err := service.Connect(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.New(cctx, nc, client.Config{Topology: service.Topology(cfg), RequestLimit: int64(cfg.Invoke.RequestLimit)})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, c, nil
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
