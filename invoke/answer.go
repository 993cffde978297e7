// Reading and classifying the function service's answer: network and
// timeout failures, bounded body reads, OCI error bodies, Retry-After.

package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// transportFailure classifies a request that got no complete answer;
// status is the answer's when its headers arrived, 0 otherwise.
func (c *Client) transportFailure(parent, attempt context.Context, fn string, status int, opcID string, start time.Time, err error) (*Response, error) {
	elapsed := time.Since(start)
	if parent.Err() != nil {
		// The caller gave up (shutdown): not the function's failure.
		return nil, fmt.Errorf("invocation interrupted: %w", context.Cause(parent))
	}
	e := &Error{FunctionID: fn, Status: status, OpcRequestID: opcID, Duration: elapsed}
	var cause timeoutCause
	switch {
	case errors.As(context.Cause(attempt), &cause):
		e.Err = fmt.Errorf("%w after %s: %s", ErrTimeout, elapsed.Round(time.Millisecond), cause)
	case isTimeout(err):
		// The transport's own bounds: dialling, the TLS handshake.
		e.Err = fmt.Errorf("%w after %s: %s", ErrTimeout, elapsed.Round(time.Millisecond), describeNetErr(err))
	case status != 0:
		e.Err = fmt.Errorf("%w: the function answered %d, then reading its body failed: %s", ErrNetwork, status, describeNetErr(err))
	default:
		e.Err = fmt.Errorf("%w: %s", ErrNetwork, describeNetErr(err))
	}
	return nil, e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describeNetErr keeps the cause but drops the URL that url.Error prepends:
// it is long and says nothing new.
func describeNetErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// readBody reads the answer: into a pooled buffer when its length is
// known (buf is then the handle to give back), whole otherwise.
func (c *Client) readBody(r io.Reader, length int64) (body []byte, buf *[]byte, err error) {
	if length < 0 || length > c.cfg.ResponseLimit {
		body, err = readLimited(r, length, c.cfg.ResponseLimit)
		return body, nil, err
	}
	body, buf = c.bodies.get(int(length))
	if _, err := io.ReadFull(r, body); err != nil {
		c.bodies.put(buf)
		return nil, nil, err
	}
	return body, buf, nil
}

// readLimited reads an answer of unknown length, up to limit, or refuses
// one announced over it. The error names the configuration key, since that
// is what an operator would raise.
func readLimited(r io.Reader, length, limit int64) ([]byte, error) {
	if length > limit {
		return nil, fmt.Errorf("%w: %d bytes, over invoke.response_limit %d bytes", ErrResponseTooLarge, length, limit)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than invoke.response_limit %d bytes", ErrResponseTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// parseErrorBody reads OCI's {code, message}; Fn answers {message}. A body
// that is neither keeps a short prefix as the message.
func parseErrorBody(body []byte) (code, message string) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Code != "" || e.Message != "") {
		return e.Code, e.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200]
	}
	return "", s
}

// parseRetryAfter accepts delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
