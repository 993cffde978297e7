package invoke

import (
	"context"
	"fmt"
	"io"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces an attempt's timeouts with the OCI SDK's meaning of
// timeout=(connect, read): connect bounds establishing the connection
// (dial and TLS handshake); read is an idle timeout, bounding the wait for
// the answer's headers and every wait between reads of its body, restarted
// by each sign of progress (request body sent, response body read). A body
// that keeps arriving is never cut off by read, however long it takes.
//
// It cancels the attempt's context with a timeoutCause.
type watchdog struct {
	cancel  context.CancelCauseFunc
	connect time.Duration
	read    time.Duration
	start   time.Time // monotonic base of last
	// last is when progress was last made, as nanoseconds since start:
	// written on every read, so a plain atomic store instead of a timer
	// reset; the timer checks it when it fires.
	last atomic.Int64

	mu        sync.Mutex // guards below
	connected bool
	answered  int // the status once the headers arrived
	stopped   bool
	timer     *time.Timer
}

// newWatchdog starts the connect bound on ctx; the returned context is the
// attempt's. Stop must be called once the attempt is over.
func newWatchdog(ctx context.Context, connect, read time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{cancel: cancel, connect: connect, read: read, start: time.Now()}
	w.timer = time.AfterFunc(connect, w.fire)
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { w.connectedNow() },
		WroteRequest: func(httptrace.WroteRequestInfo) { w.progress() },
	}
	return httptrace.WithClientTrace(ctx, trace), w
}

// connectedNow ends the connect phase and starts the read bound.
func (w *watchdog) connectedNow() {
	w.progress()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connected || w.stopped {
		return // HTTP/2 may report a connection more than once
	}
	w.connected = true
	w.timer.Reset(w.read)
}

// progress restarts the read bound.
func (w *watchdog) progress() { w.last.Store(int64(time.Since(w.start))) }

// gotAnswer records the status, for the message of a later timeout.
func (w *watchdog) gotAnswer(status int) {
	w.progress()
	w.mu.Lock()
	w.answered = status
	w.mu.Unlock()
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if !w.connected {
		w.cancel(timeoutCause(fmt.Sprintf("no connection within the connect timeout %s", w.connect)))
		return
	}
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if rest := w.read - idle; rest > 0 {
		w.timer.Reset(rest) // progress since the timer was set
		return
	}
	if w.answered != 0 {
		w.cancel(timeoutCause(fmt.Sprintf("the function answered %d, then sent nothing for the read timeout %s", w.answered, w.read)))
		return
	}
	w.cancel(timeoutCause(fmt.Sprintf("no answer within the read timeout %s", w.read)))
}

// timeoutCause is why an attempt's context was cancelled for time: it
// matches ErrTimeout and says which bound was passed.
type timeoutCause string

func (c timeoutCause) Error() string        { return string(c) }
func (c timeoutCause) Is(target error) bool { return target == ErrTimeout }

// Stop ends the watch; the attempt's context is cancelled (the attempt is
// over) without a cause of the watchdog's.
func (w *watchdog) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// progressReader reports every read that returned data to the watchdog.
type progressReader struct {
	r io.Reader
	w *watchdog
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.progress()
	}
	return n, err
}
