// Package render draws text for an operator's terminal: tables cut to its
// width (columns giving way, then left out, in an order the caller
// chooses), streamed in chunks for tables of any length, word-wrapped
// key-value lines, a progress line, and durations and counts as people
// read them. A pipe or file gets every character.
//
// It knows nothing of what it draws; the dead-letter views are
// internal/dlqview's.
package render

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

// Width is w's width in columns when w is a terminal, else 0 (no cut:
// a pipe or file gets every character).
func Width(w io.Writer) int {
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

// IsCharDevice reports whether w is a character device (a terminal, or
// /dev/null): where a missing final newline would garble the prompt, and
// where a progress bar may go. Pipes and files get their bytes as they are.
func IsCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// IsTTY reports whether v (a reader or writer) is a terminal.
func IsTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Column is one table column. Columns that may be cut give up width, in
// ascending cut order, down to min; a middle cut keeps both ends (OCIDs
// differ at the end).
type Column struct {
	Title  string
	Right  bool // right-aligned (numbers)
	Cut    int  // 0: never cut; else the order in which columns give way
	Min    int
	Middle bool
	Tail   bool // cut at the start, keeping the end
	// Drop, when the columns cut to their minimum still do not fit: 0
	// never; else the order in which columns are left out.
	Drop int
}

// Table renders rows under titles, two spaces apart, cut to width (0: no
// cut). The last column is not padded.
type Table struct {
	Cols []Column
	Rows [][]string
}

func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

func (t *Table) Render(w io.Writer, width int) error {
	l := t.layout(width)
	b := bufio.NewWriter(w)
	l.writeTitles(b)
	for _, r := range t.Rows {
		l.write(b, r)
	}
	return b.Flush()
}

// tableLayout is which columns a table shows and how wide.
type tableLayout struct {
	cols   []Column
	keep   []bool
	widths []int // per Column; 0 for dropped ones
	// cut is false in a pipe: a cell wider than its Column (a row after
	// the first chunk of a stream) is printed whole, widening its row.
	cutCells bool
}

// layout fits t's rows to width (0: no cut).
func (t *Table) layout(width int) tableLayout {
	l := tableLayout{cols: t.Cols, keep: t.fitColumns(width), widths: make([]int, len(t.Cols)), cutCells: width > 0}
	for i, c := range t.Cols {
		l.widths[i] = runeLen(c.Title)
	}
	for _, r := range t.Rows {
		for i, cell := range r {
			l.widths[i] = max(l.widths[i], runeLen(cell))
		}
	}
	shown := 0
	for i := range t.Cols {
		if !l.keep[i] {
			l.widths[i] = 0
		} else {
			shown++
		}
	}
	if width > 0 {
		over := 2*(shown-1) - width
		maxCut := 0
		for i, c := range t.Cols {
			over += l.widths[i]
			maxCut = max(maxCut, c.Cut)
		}
		for order := 1; over > 0 && order <= maxCut; order++ {
			for i, c := range t.Cols {
				if c.Cut != order || over <= 0 || !l.keep[i] {
					continue
				}
				give := min(over, l.widths[i]-max(c.Min, runeLen(c.Title)))
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
func (t *Table) fitColumns(width int) []bool {
	keep := make([]bool, len(t.Cols))
	for i := range keep {
		keep[i] = true
	}
	if width <= 0 {
		return keep
	}
	floor := func() int {
		n := 0
		for i, c := range t.Cols {
			if !keep[i] {
				continue
			}
			w := runeLen(c.Title)
			for _, r := range t.Rows {
				if i < len(r) {
					w = max(w, runeLen(r[i]))
				}
			}
			if c.Cut > 0 {
				w = min(w, max(c.Min, runeLen(c.Title)))
			}
			n += w + 2
		}
		return n - 2
	}
	for order := 1; floor() > width && order <= len(t.Cols); order++ {
		for i, c := range t.Cols {
			if c.Drop == order {
				keep[i] = false
			}
		}
	}
	return keep
}

func (l tableLayout) writeTitles(b *bufio.Writer) {
	titles := make([]string, len(l.cols))
	for i, c := range l.cols {
		titles[i] = c.Title
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
		case !l.cutCells || runeLen(cell) <= width:
		case c.Tail:
			r := []rune(cell)
			cell = "…" + string(r[len(r)-width+1:])
		default:
			cell = Cut(cell, width, c.Middle)
		}
		pad := strings.Repeat(" ", max(0, width-runeLen(cell)))
		switch {
		case c.Right:
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

// Stream renders a table of any length in chunks: the first chunk
// decides the columns and their widths, so memory stays bounded.
type Stream struct {
	t      Table
	w      *bufio.Writer
	width  int
	layout *tableLayout
	n      int
}

// streamChunk is how many rows a chunk holds.
const streamChunk = 1000

func NewStream(w io.Writer, width int, cols []Column) *Stream {
	return &Stream{t: Table{Cols: cols}, w: bufio.NewWriter(w), width: width}
}

func (s *Stream) Add(cells ...string) error {
	s.t.Add(cells...)
	s.n++
	if len(s.t.Rows) >= streamChunk {
		return s.Flush()
	}
	return nil
}

// Flush writes the rows added so far; call it once more at the end.
func (s *Stream) Flush() error {
	if s.layout == nil {
		if len(s.t.Rows) == 0 {
			return nil
		}
		l := s.t.layout(s.width)
		s.layout = &l
		l.writeTitles(s.w)
	}
	for _, r := range s.t.Rows {
		s.layout.write(s.w, r)
	}
	s.t.Rows = s.t.Rows[:0]
	return s.w.Flush()
}

// WrapIndented writes "  key  value" lines, the value word-wrapped to width
// (0: no wrap) with following lines aligned under it.
func WrapIndented(w io.Writer, indent int, key string, keyWidth int, value string, width int) {
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

// Cut shortens s to n runes with an ellipsis, at the end or the middle.
func Cut(s string, n int, middle bool) string {
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
func Age(d time.Duration) string {
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
func When(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z") + " (" + Age(now.Sub(t)) + " ago)"
}

// IsText reports whether b reads as text: valid UTF-8 without control
// characters other than tab, newline, carriage return and form feed.
func IsText(b []byte) bool {
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

// OneLine flattens text for a Table cell.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Plural renders "1 record", "2 records".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// Rows is how many rows were added.
func (s *Stream) Rows() int { return s.n }
