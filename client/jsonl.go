// The JSONL job format of `worker enqueue --file x.jsonl`: one job per
// line, published in order with a bounded number outstanding.

package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/invoke-worker/worker/job"
	"github.com/nats-io/nats.go"
)

// jobLine is one line of a .jsonl file.
type jobLine struct {
	Function   string            `json:"function"`
	ID         string            `json:"id"`
	Subject    string            `json:"subject"`
	Intent     string            `json:"intent"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	BodyBase64 *string           `json:"body_base64"`
}

// ParseJobLine reads one line of a JSONL job file (docs/contract.md,
// "worker enqueue"): a JSON object with the keys function, id, subject,
// intent, headers, body (a string is the body as text, any other JSON value
// is sent as JSON) and body_base64. Keys left out take their value from
// tmpl, and the line's headers win over tmpl's. The job is checked as
// Enqueue would: an error names what is wrong with the line.
func ParseJobLine(line []byte, tmpl Job) (Job, error) {
	var l jobLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Job{}, fmt.Errorf("not a JSON object of a job: %w", err)
	}
	if dec.More() {
		return Job{}, errors.New("more than one JSON value on the line")
	}
	j := tmpl
	j.Header = make(nats.Header, len(tmpl.Header)+len(l.Headers))
	for k, vs := range tmpl.Header {
		j.Header[k] = slices.Clone(vs)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&j.FunctionID, l.Function)
	set(&j.ID, l.ID)
	set(&j.Subject, l.Subject)
	set(&j.Intent, l.Intent)
	for k, v := range l.Headers {
		j.Header[k] = []string{v}
	}
	body := bytes.TrimSpace(l.Body)
	switch {
	case l.BodyBase64 != nil && len(body) > 0 && !bytes.Equal(body, []byte("null")):
		return Job{}, errors.New("body and body_base64 exclude each other")
	case l.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*l.BodyBase64)
		if err != nil {
			return Job{}, fmt.Errorf("body_base64: %w", err)
		}
		j.Body = b
	case len(body) == 0 || bytes.Equal(body, []byte("null")):
		j.Body = nil
	case body[0] == '"':
		var s string
		if err := json.Unmarshal(body, &s); err != nil {
			return Job{}, fmt.Errorf("body: %w", err)
		}
		j.Body = []byte(s)
	default:
		// Any other JSON value is the body itself, as JSON.
		j.Body = body
		if j.ContentType == "" && job.Lookup(j.Header, job.HeaderContentType) == "" {
			j.ContentType = "application/json"
		}
	}
	if j.FunctionID == "" {
		return Job{}, errors.New(`no function: give "function" or --function`)
	}
	if _, err := j.Message(); err != nil {
		return Job{}, err
	}
	return j, nil
}

// CountJobLines counts the non-blank lines of a JSONL job file: the jobs
// it holds, valid or not (for a progress bar).
func CountJobLines(r io.Reader) (int, error) {
	sc := bufio.NewReaderSize(r, 1<<16)
	n := 0
	for {
		line, err := sc.ReadSlice('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		for errors.Is(err, bufio.ErrBufferFull) { // a long line: skip its rest
			_, err = sc.ReadSlice('\n')
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// LineResult is what became of one line of a JSONL job file.
type LineResult struct {
	// Line is the line's number, from 1.
	Line int
	// ID and Duplicate are as in BatchResult, when the job was enqueued.
	ID        JobID
	Duplicate bool
	// Err says why the line's job was not enqueued: the line is not a
	// valid job (ParseJobLine), or the publish failed.
	Err error
}

// EnqueueLines publishes one job per non-blank line of r (ParseJobLine,
// over tmpl), reading lines only as EnqueueAll takes jobs, so memory stays
// bounded whatever the file's size. report is called once for every
// non-blank line, never concurrently: at once for a line that cannot be
// parsed, in order with the others as their acknowledgements come. The
// error is EnqueueAll's (ErrIncomplete when some jobs failed) or the
// reader's.
func (c *Client) EnqueueLines(ctx context.Context, r io.Reader, tmpl Job, report func(LineResult)) error {
	var (
		mu      sync.Mutex // the reader and the collector both report
		lines   []int      // of jobs handed to EnqueueAll, not yet reported
		readErr error
	)
	jobs := func(yield func(Job) bool) {
		rd := bufio.NewReaderSize(r, 1<<16)
		for n := 1; ; n++ {
			line, err := rd.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				j, perr := ParseJobLine(line, tmpl)
				mu.Lock()
				if perr != nil {
					report(LineResult{Line: n, Err: perr})
				} else {
					lines = append(lines, n)
				}
				mu.Unlock()
				if perr == nil && !yield(j) {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return
			}
		}
	}
	_, err := c.EnqueueAll(ctx, jobs, func(res BatchResult) {
		mu.Lock()
		defer mu.Unlock()
		line := lines[0]
		lines = lines[1:]
		report(LineResult{Line: line, ID: res.ID, Duplicate: res.Duplicate, Err: res.Err})
	})
	if readErr != nil && (err == nil || errors.Is(err, ErrIncomplete)) {
		return fmt.Errorf("read job lines: %w", readErr)
	}
	return err
}
