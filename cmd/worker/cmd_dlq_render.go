package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"
)

// termWidth is w's width in columns when w is a terminal, else 0 (no cut:
// a pipe or file gets every character).
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		return 0
	}
	return width
}

// isTTY reports whether r or w is a terminal.
func isTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// column is one table column. Columns that may be cut give up width, in
// ascending cut order, down to min; a middle cut keeps both ends (OCIDs
// differ at the end).
type column struct {
	title  string
	right  bool // right-aligned (numbers)
	cut    int  // 0: never cut; else the order in which columns give way
	min    int
	middle bool
	tail   bool // cut at the start, keeping the end
	// drop, when the columns cut to their minimum still do not fit: 0
	// never; else the order in which columns are left out.
	drop int
}

// table renders rows under titles, two spaces apart, cut to width (0: no
// cut). The last column is not padded.
type table struct {
	cols []column
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) render(w io.Writer, width int) error {
	l := t.layout(width)
	b := bufio.NewWriter(w)
	l.writeTitles(b)
	for _, r := range t.rows {
		l.write(b, r)
	}
	return b.Flush()
}

// tableLayout is which columns a table shows and how wide.
type tableLayout struct {
	cols   []column
	keep   []bool
	widths []int // per column; 0 for dropped ones
	// cut is false in a pipe: a cell wider than its column (a row after
	// the first chunk of a stream) is printed whole, widening its row.
	cut bool
}

// layout fits t's rows to width (0: no cut).
func (t *table) layout(width int) tableLayout {
	l := tableLayout{cols: t.cols, keep: t.fitColumns(width), widths: make([]int, len(t.cols)), cut: width > 0}
	for i, c := range t.cols {
		l.widths[i] = runeLen(c.title)
	}
	for _, r := range t.rows {
		for i, cell := range r {
			l.widths[i] = max(l.widths[i], runeLen(cell))
		}
	}
	shown := 0
	for i := range t.cols {
		if !l.keep[i] {
			l.widths[i] = 0
		} else {
			shown++
		}
	}
	if width > 0 {
		over := 2*(shown-1) - width
		maxCut := 0
		for i, c := range t.cols {
			over += l.widths[i]
			maxCut = max(maxCut, c.cut)
		}
		for order := 1; over > 0 && order <= maxCut; order++ {
			for i, c := range t.cols {
				if c.cut != order || over <= 0 || !l.keep[i] {
					continue
				}
				give := min(over, l.widths[i]-max(c.min, runeLen(c.title)))
				if give > 0 {
					l.widths[i] -= give
					over -= give
				}
			}
		}
	}
	return l
}

// fitColumns says which columns to show: it leaves out droppable columns,
// in drop order, until the others fit width at their minimum widths.
func (t *table) fitColumns(width int) []bool {
	keep := make([]bool, len(t.cols))
	for i := range keep {
		keep[i] = true
	}
	if width <= 0 {
		return keep
	}
	floor := func() int {
		n := 0
		for i, c := range t.cols {
			if !keep[i] {
				continue
			}
			w := runeLen(c.title)
			for _, r := range t.rows {
				if i < len(r) {
					w = max(w, runeLen(r[i]))
				}
			}
			if c.cut > 0 {
				w = min(w, max(c.min, runeLen(c.title)))
			}
			n += w + 2
		}
		return n - 2
	}
	for order := 1; floor() > width && order <= len(t.cols); order++ {
		for i, c := range t.cols {
			if c.drop == order {
				keep[i] = false
			}
		}
	}
	return keep
}

func (l tableLayout) writeTitles(b *bufio.Writer) {
	titles := make([]string, len(l.cols))
	for i, c := range l.cols {
		titles[i] = c.title
	}
	l.write(b, titles)
}

// write writes one row: cells cut to their column, two spaces apart, the
// last column unpadded.
func (l tableLayout) write(b *bufio.Writer, cells []string) {
	var sb strings.Builder
	last := len(l.cols) - 1
	for last > 0 && !l.keep[last] {
		last--
	}
	for i, c := range l.cols {
		if !l.keep[i] {
			continue
		}
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		width := l.widths[i]
		switch {
		case !l.cut || runeLen(cell) <= width:
		case c.tail:
			r := []rune(cell)
			cell = "…" + string(r[len(r)-width+1:])
		default:
			cell = cutTo(cell, width, c.middle)
		}
		pad := strings.Repeat(" ", max(0, width-runeLen(cell)))
		switch {
		case c.right:
			sb.WriteString(pad + cell)
		case i == last:
			sb.WriteString(cell)
		default:
			sb.WriteString(cell + pad)
		}
		if i != last {
			sb.WriteString("  ")
		}
	}
	b.WriteString(strings.TrimRight(sb.String(), " "))
	b.WriteByte('\n')
}

// tableStream renders a table of any length in chunks: the first chunk
// decides the columns and their widths, so memory stays bounded.
type tableStream struct {
	t      table
	w      *bufio.Writer
	width  int
	layout *tableLayout
	rows   int
}

// streamChunk is how many rows a chunk holds.
const streamChunk = 1000

func newTableStream(w io.Writer, width int, cols []column) *tableStream {
	return &tableStream{t: table{cols: cols}, w: bufio.NewWriter(w), width: width}
}

func (s *tableStream) add(cells ...string) error {
	s.t.add(cells...)
	s.rows++
	if len(s.t.rows) >= streamChunk {
		return s.flush()
	}
	return nil
}

// flush writes the rows added so far; call it once more at the end.
func (s *tableStream) flush() error {
	if s.layout == nil {
		if len(s.t.rows) == 0 {
			return nil
		}
		l := s.t.layout(s.width)
		s.layout = &l
		l.writeTitles(s.w)
	}
	for _, r := range s.t.rows {
		s.layout.write(s.w, r)
	}
	s.t.rows = s.t.rows[:0]
	return s.w.Flush()
}

// wrapIndented writes "  key  value" lines, the value word-wrapped to width
// (0: no wrap) with following lines aligned under it.
func wrapIndented(w io.Writer, indent int, key string, keyWidth int, value string, width int) {
	prefix := strings.Repeat(" ", indent) + key + strings.Repeat(" ", max(0, keyWidth-runeLen(key)))
	room := width - runeLen(prefix)
	if width == 0 || room < 20 || runeLen(value) <= room {
		fmt.Fprintf(w, "%s%s\n", prefix, value)
		return
	}
	pad := strings.Repeat(" ", runeLen(prefix))
	line := ""
	first := true
	flush := func() {
		if first {
			fmt.Fprintf(w, "%s%s\n", prefix, line)
			first = false
		} else {
			fmt.Fprintf(w, "%s%s\n", pad, line)
		}
		line = ""
	}
	for _, word := range strings.Fields(value) {
		for runeLen(word) > room { // a word longer than a line: break it
			if line != "" {
				flush()
			}
			r := []rune(word)
			line = string(r[:room])
			flush()
			word = string(r[room:])
		}
		switch {
		case line == "":
			line = word
		case runeLen(line)+1+runeLen(word) <= room:
			line += " " + word
		default:
			flush()
			line = word
		}
	}
	if line != "" || first {
		flush()
	}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// cutTo shortens s to n runes with an ellipsis, at the end or the middle.
func cutTo(s string, n int, middle bool) string {
	if runeLen(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	if middle && n >= 5 {
		head := (n - 1) / 2
		tail := n - 1 - head
		return string(r[:head]) + "…" + string(r[len(r)-tail:])
	}
	return string(r[:n-1]) + "…"
}

// age renders a duration the way an operator reads it at a glance: 42s,
// 12m, 3h05m, 2d04h.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// when renders t as UTC with its age, or "-".
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z") + " (" + age(now.Sub(t)) + " ago)"
}

// isText reports whether b reads as text: valid UTF-8 without control
// characters other than tab, newline, carriage return and form feed.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' && r != '\f' {
			return false
		}
	}
	return true
}

// oneLine flattens text for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// plural renders "1 record", "2 records".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
