package render

import (
	"strings"
	"testing"
	"time"
)

func TestTableCutsToWidth(t *testing.T) {
	t.Parallel()
	tb := &Table{Cols: []Column{
		{Title: "SEQ", Right: true},
		{Title: "FUNCTION", Cut: 2, Min: 12, Tail: true},
		{Title: "CODE", Cut: 3, Min: 6, Drop: 1},
		{Title: "ERROR", Cut: 1, Min: 10},
	}}
	tb.Add("7", "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha", "TooManyRequests", "gave up after 8 attempts: slow down")
	tb.Add("12", "-", "-", "")
	for _, width := range []int{0, 120, 60, 44, 30} {
		var b strings.Builder
		if err := tb.Render(&b, width); err != nil {
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
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
	for in, want := range map[string]bool{"": true, "{\"a\":1}\n": true, "tab\there": true, "é": true, "\x00x": false, "\xff": false, "bell\a": false} {
		if got := IsText([]byte(in)); got != want {
			t.Errorf("IsText(%q) = %v", in, got)
		}
	}
}

func TestTableStreamIsChunked(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	ts := NewStream(&b, 0, []Column{{Title: "N", Right: true}, {Title: "TEXT"}})
	n := 2*streamChunk + 7
	for i := range n {
		text := "x"
		if i == n-1 {
			text = strings.Repeat("y", 50) // wider than the first chunk's Column: printed whole
		}
		if err := ts.Add(strings.Repeat("1", 1+i/streamChunk), text); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != n+1 || ts.Rows() != n || lines[0] != "N  TEXT" || !strings.HasSuffix(lines[n], strings.Repeat("y", 50)) {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[n])
	}
}
