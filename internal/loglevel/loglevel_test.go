package loglevel_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/loglevel"
)

// TestSetChangesDerivedLoggers: a change reaches loggers derived before it,
// and a derived logger's own higher level stays a floor.
func TestSetChangesDerivedLoggers(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	lv := loglevel.New(zerolog.InfoLevel)
	root := lv.Apply(zerolog.New(&buf))
	child := root.With().Str("component", "x").Logger()
	quiet := child.Level(zerolog.WarnLevel)

	child.Debug().Msg("hidden-1")
	lv.Set(zerolog.DebugLevel)
	child.Debug().Msg("shown-1")
	quiet.Info().Msg("hidden-2")
	lv.Set(zerolog.ErrorLevel)
	child.Warn().Msg("hidden-3")
	child.Error().Msg("shown-2")
	out := buf.String()
	for _, s := range []string{"shown-1", "shown-2"} {
		if !strings.Contains(out, s) {
			t.Errorf("%s missing:\n%s", s, out)
		}
	}
	for _, s := range []string{"hidden-1", "hidden-2", "hidden-3"} {
		if strings.Contains(out, s) {
			t.Errorf("%s written:\n%s", s, out)
		}
	}
}

// TestBelowTheLevelAllocatesNothing: a line below the level builds no
// event, as with a fixed level.
func TestBelowTheLevelAllocatesNothing(t *testing.T) {
	lv := loglevel.New(zerolog.InfoLevel)
	log := lv.Apply(zerolog.New(&bytes.Buffer{}))
	if n := testing.AllocsPerRun(100, func() { log.Debug().Str("k", "v").Int("n", 1).Msg("x") }); n != 0 {
		t.Errorf("%v allocations per line below the level", n)
	}
}

// TestHandler: GET reads the level, PUT sets it and logs the change, a bad
// name or method changes nothing.
func TestHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	lv := loglevel.New(zerolog.InfoLevel)
	h := lv.Handler(lv.Apply(zerolog.New(&buf)))
	do := func(method, body string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/loglevel", strings.NewReader(body)))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, got := do(http.MethodGet, ""); code != 200 || got != "info" {
		t.Errorf("GET: %d %q", code, got)
	}
	if code, got := do(http.MethodPut, "DEBUG\n"); code != 200 || got != "debug" || lv.Get() != zerolog.DebugLevel {
		t.Errorf("PUT debug: %d %q, level %v", code, got, lv.Get())
	}
	if !strings.Contains(buf.String(), `"from":"info","to":"debug"`) {
		t.Errorf("change not logged: %s", buf.String())
	}
	for _, body := range []string{"verbose", "", "panic", strings.Repeat("d", 100)} {
		if code, _ := do(http.MethodPut, body); code != http.StatusBadRequest || lv.Get() != zerolog.DebugLevel {
			t.Errorf("PUT %q: %d, level %v", body, code, lv.Get())
		}
	}
	if code, _ := do(http.MethodPost, "info"); code != http.StatusMethodNotAllowed || lv.Get() != zerolog.DebugLevel {
		t.Errorf("POST: %d, level %v", code, lv.Get())
	}
	lv.Set(zerolog.ErrorLevel)
	buf.Reset()
	do(http.MethodPut, "warn")
	if !strings.Contains(buf.String(), "log level changed") {
		t.Errorf("a change from error is not logged: %q", buf.String())
	}
}
