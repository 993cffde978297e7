package main

import (
	"strings"
	"testing"
	"time"
)

func TestTableCutsToWidth(t *testing.T) {
	t.Parallel()
	tb := &table{cols: []column{
		{title: "SEQ", right: true},
		{title: "FUNCTION", cut: 2, min: 12, tail: true},
		{title: "CODE", cut: 3, min: 6, drop: 1},
		{title: "ERROR", cut: 1, min: 10},
	}}
	tb.add("7", "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha", "TooManyRequests", "gave up after 8 attempts: slow down")
	tb.add("12", "-", "-", "")
	for _, width := range []int{0, 120, 60, 44, 30} {
		var b strings.Builder
		if err := tb.render(&b, width); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if width > 0 && runeLen(l) > width {
				t.Fatalf("width %d: line %q is %d wide", width, l, runeLen(l))
			}
			if strings.HasSuffix(l, " ") {
				t.Fatalf("width %d: trailing spaces in %q", width, l)
			}
		}
		out := b.String()
		switch width {
		case 0, 120:
			if !strings.Contains(out, "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha") || !strings.Contains(out, "slow down") {
				t.Fatalf("width %d cut what fits:\n%s", width, out)
			}
		case 30:
			if strings.Contains(out, "CODE") || !strings.Contains(out, "…aaaaaaaalpha") {
				t.Fatalf("width 30 should drop CODE and keep the OCID's end:\n%s", out)
			}
		}
	}
}

func TestRenderHelpers(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 42 * time.Second: "42s", 12 * time.Minute: "12m",
		3*time.Hour + 5*time.Minute: "3h05m", 50 * time.Hour: "2d02h",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
	for in, want := range map[string]bool{"": true, "{\"a\":1}\n": true, "tab\there": true, "é": true, "\x00x": false, "\xff": false, "bell\a": false} {
		if got := isText([]byte(in)); got != want {
			t.Errorf("isText(%q) = %v", in, got)
		}
	}
	for _, c := range []struct {
		err    string
		status int
		code   string
		want   string
	}{
		{"gave up after 8 attempts: function answered 503 FunctionInvokeServiceUnavailable: busy (opc-request-id a-1)", 503, "FunctionInvokeServiceUnavailable", "gave up after 8 attempts: busy"},
		{"function answered 404 NotAuthorizedOrNotFound (opc-request-id x)", 404, "NotAuthorizedOrNotFound", "function answered 404 NotAuthorizedOrNotFound"},
		{"network error:\n connection refused", 0, "", "network error: connection refused"},
	} {
		if got := compactError(c.err, c.status, c.code); got != c.want {
			t.Errorf("compactError(%q) = %q, want %q", c.err, got, c.want)
		}
	}
	if got := shellJoin([]string{"--grep", "time out", "--code", "none", "--since", "2025-01-01T00:00:00Z", "--grep", "it's"}); got != `--grep 'time out' --code none --since 2025-01-01T00:00:00Z --grep 'it'\''s'` {
		t.Errorf("shellJoin: %s", got)
	}
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90m": now.Add(-90 * time.Minute), "7d": now.Add(-7 * 24 * time.Hour), "1.5d": now.Add(-36 * time.Hour),
		"2025-06-01T08:00:00Z": time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC), "2025-06-01": time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen("--since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"soon", "-2h", "2x", "d"} {
		if _, err := parseWhen("--since", in, now); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("parseWhen(%q) accepted or did not name the flag: %v", in, err)
		}
	}
}

func TestTableStreamIsChunked(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	ts := newTableStream(&b, 0, []column{{title: "N", right: true}, {title: "TEXT"}})
	n := 2*streamChunk + 7
	for i := range n {
		text := "x"
		if i == n-1 {
			text = strings.Repeat("y", 50) // wider than the first chunk's column: printed whole
		}
		if err := ts.add(strings.Repeat("1", 1+i/streamChunk), text); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != n+1 || ts.rows != n || lines[0] != "N  TEXT" || !strings.HasSuffix(lines[n], strings.Repeat("y", 50)) {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[n])
	}
}
