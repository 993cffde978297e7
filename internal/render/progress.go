package render

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress is a one-line progress bar on a terminal, redrawn in place at
// most ten times a second. Lines printed through Above appear over it.
// A nil *Progress draws nothing, so callers need not check for a terminal.
// It is used from one goroutine.
type Progress struct {
	w      io.Writer
	verb   string
	total  int
	width  int
	start  time.Time
	drawn  time.Time
	done   int
	status string
	now    func() time.Time
}

// NewProgress returns a bar on w when w is a terminal, else nil.
func NewProgress(w io.Writer, verb string, total int) *Progress {
	width := Width(w)
	if width == 0 || total == 0 {
		return nil
	}
	p := &Progress{w: w, verb: verb, total: total, width: width, now: time.Now}
	p.start = p.now()
	p.draw(true)
	return p
}

// Set records progress: done records, and a short status (counts).
func (p *Progress) Set(done int, status string) {
	if p == nil {
		return
	}
	p.done, p.status = done, status
	p.draw(done >= p.total)
}

// Above prints a line above the bar.
func (p *Progress) Above(format string, args ...any) {
	if p == nil {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K"+format+"\n", args...)
	p.draw(true)
}

// Finish erases the bar.
func (p *Progress) Finish() {
	if p == nil {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
}

func (p *Progress) draw(force bool) {
	now := p.now()
	if !force && now.Sub(p.drawn) < 100*time.Millisecond {
		return
	}
	p.drawn = now
	elapsed := now.Sub(p.start)
	pct := float64(p.done) / float64(p.total)
	right := fmt.Sprintf(" %d/%d", p.done, p.total)
	if secs := elapsed.Seconds(); p.done > 0 && secs > 0.5 {
		r := float64(p.done) / secs
		right += fmt.Sprintf("  %.1f/s", r)
		if p.done < p.total {
			right += "  ETA " + Age(time.Duration(float64(p.total-p.done)/r*float64(time.Second)))
		}
	}
	if p.status != "" {
		right += "  " + p.status
	}
	left := p.verb + " "
	bar := p.width - runeLen(left) - runeLen(right) - 3
	if bar > 40 {
		bar = 40
	}
	line := left
	if bar >= 10 {
		fill := int(pct * float64(bar))
		line += "[" + strings.Repeat("█", fill) + strings.Repeat("░", bar-fill) + "]"
	}
	line = Cut(line+right, p.width-1, false)
	fmt.Fprint(p.w, "\r\033[K"+line)
}
