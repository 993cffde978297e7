package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Severity grades a finding. Errors and warnings make a report fail.
type Severity string

// Severities, from harmless to fatal.
const (
	// OK: checked, and nothing is wrong.
	OK Severity = "ok"
	// Info: worth knowing, not wrong.
	Info Severity = "info"
	// Skipped: could not be checked (offline, or nothing to check against).
	Skipped Severity = "skipped"
	// Warning: works, but is likely to hurt in production.
	Warning Severity = "warning"
	// Error: the worker will refuse to start, lose or duplicate jobs, or
	// fail every invocation.
	Error Severity = "error"
)

// Finding is the outcome of one check.
type Finding struct {
	// Check names the check, stable across versions (ack_wait.prefetch).
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Keys are the configuration keys involved.
	Keys []string `json:"keys,omitempty"`
	// What happened or what is wrong, with the values.
	What string `json:"what"`
	// Why it matters; empty for OK findings.
	Why string `json:"why,omitempty"`
	// Fix says what to change; empty for OK findings.
	Fix string `json:"fix,omitempty"`
}

// PolicyLine explains one part of the effective policy.
type PolicyLine struct {
	Topic string `json:"topic"`
	Text  string `json:"text"`
}

// Report is what Run returns.
type Report struct {
	// Policy explains what the configuration makes the worker do.
	Policy []PolicyLine `json:"policy"`
	// Findings are static ones first, then live ones, in check order.
	Findings []Finding `json:"findings"`
	// Errors and Warnings count the findings of those severities.
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

// Failed reports whether anything is wrong: an error or a warning.
func (r Report) Failed() bool { return r.Errors > 0 || r.Warnings > 0 }

func (r *Report) add(fs ...Finding) {
	for _, f := range fs {
		switch f.Severity {
		case Error:
			r.Errors++
		case Warning:
			r.Warnings++
		}
		r.Findings = append(r.Findings, f)
	}
}

// WriteJSON writes r as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for a human: the policy, then every finding with its
// why and fix, then a summary line.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Effective policy\n")
	width := 0
	for _, p := range r.Policy {
		width = max(width, len(p.Topic))
	}
	for _, p := range r.Policy {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, p.Topic, p.Text)
	}
	b.WriteString("\nChecks\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %-7s  %s: %s\n", f.Severity, f.Check, f.What)
		if f.Why != "" {
			fmt.Fprintf(&b, "           why: %s\n", f.Why)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "           fix: %s\n", f.Fix)
		}
	}
	verdict := "clean"
	if r.Failed() {
		verdict = "something is wrong"
	}
	fmt.Fprintf(&b, "\n%s, %s: %s\n", count(r.Errors, "error"), count(r.Warnings, "warning"), verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// scrub replaces every occurrence of a secret in the report's text, so
// that no error message from a library (a URL with a password in it, say)
// can carry one out.
func (r *Report) scrub(secrets []string) {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, redacted)
		}
	}
	if len(pairs) == 0 {
		return
	}
	rep := strings.NewReplacer(pairs...)
	for i := range r.Findings {
		f := &r.Findings[i]
		f.What, f.Why, f.Fix = rep.Replace(f.What), rep.Replace(f.Why), rep.Replace(f.Fix)
	}
	for i := range r.Policy {
		r.Policy[i].Text = rep.Replace(r.Policy[i].Text)
	}
}

const redacted = "REDACTED"

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
