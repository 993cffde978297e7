// Package loglevel owns the process's log level while it runs: a level
// that an operator changes without a restart (PUT /loglevel on the admin
// endpoint), seen at once by every logger derived from the root logger. It
// does not own the loggers or their output.
//
// The level is a zerolog sampler reading an atomic value: zerolog asks the
// sampler before it builds an event, so a line below the level costs one
// atomic load and allocates nothing, as a fixed level does.
package loglevel

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Level is a log level that may change while loggers use it.
type Level struct{ v atomic.Int32 }

// New returns a Level set to l.
func New(l zerolog.Level) *Level {
	lv := &Level{}
	lv.Set(l)
	return lv
}

// Get returns the level in force.
func (l *Level) Get() zerolog.Level { return zerolog.Level(l.v.Load()) }

// Set changes the level of every logger Apply made.
func (l *Level) Set(lvl zerolog.Level) { l.v.Store(int32(lvl)) }

// Sample implements zerolog.Sampler: it lets through lines at or above the
// level in force.
func (l *Level) Sample(lvl zerolog.Level) bool { return lvl >= l.Get() }

// Apply returns log following l: its own fixed level is opened up and l
// decides instead. Loggers derived from the result (With, Level) follow l
// too; one given a higher fixed level (Level(Warn)) keeps that as a floor.
func (l *Level) Apply(log zerolog.Logger) zerolog.Logger {
	return log.Level(zerolog.TraceLevel).Sample(l)
}

// Parse reads a level name: trace, debug, info, warn or error.
func Parse(s string) (zerolog.Level, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "trace", "debug", "info", "warn", "error":
		return zerolog.ParseLevel(s)
	}
	return zerolog.NoLevel, fmt.Errorf("log level %q: want trace, debug, info, warn or error", s)
}

// maxBody bounds a PUT's body: a level name is a few bytes.
const maxBody = 64

// Handler serves the level: GET answers its name, PUT sets it from the
// body (a name, as Parse reads it) and answers the new name; a bad name is
// 400 and changes nothing. Each change is logged on log, whatever the level.
func (l *Level) Handler(log zerolog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut:
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil || len(body) > maxBody {
				http.Error(w, "want a level name: trace, debug, info, warn or error", http.StatusBadRequest)
				return
			}
			lvl, err := Parse(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			was := l.Get()
			l.Set(lvl)
			// Log(): no level, so the line is written whatever the
			// level was or now is.
			log.Log().Str("from", was.String()).Str("to", lvl.String()).Str("remote", r.RemoteAddr).Msg("log level changed")
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		_, _ = fmt.Fprintln(w, l.Get().String())
	})
}
