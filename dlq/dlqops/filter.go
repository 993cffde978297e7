package dlqops

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// None, as a Filter status or code, selects records without one (no HTTP
// answer; no OCI error code).
const None = "none"

// Filter selects dead-letter records. Fields are ANDed; the values within a
// field are ORed. The zero Filter selects every record.
type Filter struct {
	// Seqs restricts the selection to these sequences.
	Seqs []SeqRange
	// Reasons selects records of these reasons.
	Reasons []dlq.Reason
	// Functions selects records of these function OCIDs, or None for
	// records without one.
	Functions []string
	// Statuses selects by last HTTP status: "503", a class such as "5xx",
	// or None for records without an answer.
	Statuses []string
	// Codes selects by the last attempt's OCI error code (case-insensitive),
	// or None for records without one.
	Codes []string
	// Since and Until bound the failure time (Invoke-Failed-At), inclusive
	// and exclusive.
	Since, Until time.Time
	// Grep is a regular expression (RE2, case-insensitive) matched against
	// the error text.
	Grep string
	// Limit stops after that many matching records, oldest first; 0 means
	// no limit.
	Limit int
}

// SeqRange is an inclusive range of stream sequences.
type SeqRange struct{ First, Last uint64 }

// ParseSeqRange reads "42" or "40-50".
func ParseSeqRange(s string) (SeqRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	first, err := strconv.ParseUint(a, 10, 64)
	if err != nil || first == 0 {
		return SeqRange{}, fmt.Errorf("%q is not a record sequence (want a number such as 42, or a range such as 40-50)", s)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(b, 10, 64); err != nil || last < first {
			return SeqRange{}, fmt.Errorf("%q is not a sequence range (want FIRST-LAST with FIRST <= LAST)", s)
		}
	}
	return SeqRange{First: first, Last: last}, nil
}

func (r SeqRange) String() string {
	if r.First == r.Last {
		return strconv.FormatUint(r.First, 10)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// IsZero reports whether f selects every record.
func (f Filter) IsZero() bool {
	return len(f.Seqs) == 0 && len(f.Reasons) == 0 && len(f.Functions) == 0 && len(f.Statuses) == 0 &&
		len(f.Codes) == 0 && f.Since.IsZero() && f.Until.IsZero() && f.Grep == "" && f.Limit == 0
}

// Validate reports the first unusable field.
func (f Filter) Validate() error {
	_, err := f.compile()
	return err
}

// matcher is a validated Filter, ready to test records.
type matcher struct {
	f        Filter
	grep     *regexp.Regexp
	statuses []statusMatch
	codes    []string
}

type statusMatch struct{ lo, hi int }

func (f Filter) compile() (*matcher, error) {
	m := &matcher{f: f}
	for _, r := range f.Seqs {
		if r.First == 0 || r.Last < r.First {
			return nil, fieldErr("seq", "%d-%d is not a sequence range", r.First, r.Last)
		}
	}
	for _, r := range f.Reasons {
		if _, err := dlq.ParseReason(string(r)); err != nil {
			return nil, &FieldError{Field: "reason", Err: err}
		}
	}
	for _, fn := range f.Functions {
		if fn == None {
			continue
		}
		if err := job.ValidateFunctionID(fn); err != nil {
			return nil, &FieldError{Field: "function", Err: err}
		}
	}
	for _, s := range f.Statuses {
		sm, err := parseStatus(s)
		if err != nil {
			return nil, &FieldError{Field: "status", Err: err}
		}
		m.statuses = append(m.statuses, sm)
	}
	for _, c := range f.Codes {
		if c == "" || strings.ContainsAny(c, " \t") {
			return nil, fieldErr("code", "%q is not an OCI error code (want e.g. TooManyRequests, or %s)", c, None)
		}
		m.codes = append(m.codes, strings.ToLower(c))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, fieldErr("until", "%s is not after since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	if f.Grep != "" {
		re, err := regexp.Compile("(?i)" + f.Grep)
		if err != nil {
			return nil, &FieldError{Field: "grep", Err: err}
		}
		m.grep = re
	}
	if f.Limit < 0 {
		return nil, fieldErr("limit", "%d: must not be negative", f.Limit)
	}
	return m, nil
}

func parseStatus(s string) (statusMatch, error) {
	if strings.EqualFold(s, None) {
		return statusMatch{0, 0}, nil
	}
	if len(s) == 3 && strings.EqualFold(s[1:], "xx") && s[0] >= '1' && s[0] <= '5' {
		lo := int(s[0]-'0') * 100
		return statusMatch{lo, lo + 99}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return statusMatch{}, fmt.Errorf("%q is not an HTTP status (want e.g. 503, 5xx, or %s)", s, None)
	}
	return statusMatch{n, n}, nil
}

// match reports whether r is selected (Limit aside).
func (m *matcher) match(r *dlq.Record) bool {
	f := &m.f
	if len(f.Seqs) > 0 && !slices.ContainsFunc(f.Seqs, func(s SeqRange) bool { return r.Seq >= s.First && r.Seq <= s.Last }) {
		return false
	}
	if len(f.Reasons) > 0 && !slices.Contains(f.Reasons, r.Reason) {
		return false
	}
	if len(f.Functions) > 0 && !slices.Contains(f.Functions, cmp.Or(r.FunctionID, None)) {
		return false
	}
	if len(m.statuses) > 0 && !slices.ContainsFunc(m.statuses, func(s statusMatch) bool { return r.Status >= s.lo && r.Status <= s.hi }) {
		return false
	}
	if len(m.codes) > 0 {
		code := strings.ToLower(r.Code)
		if code == "" {
			code = None
		}
		if !slices.Contains(m.codes, code) {
			return false
		}
	}
	if !f.Since.IsZero() && r.FailedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.FailedAt.Before(f.Until) {
		return false
	}
	if m.grep != nil && !m.grep.MatchString(r.Error) {
		return false
	}
	return true
}

// seqBounds is the smallest and largest sequence the filter can select.
func (m *matcher) seqBounds() (lo, hi uint64) {
	if len(m.f.Seqs) == 0 {
		return 0, math.MaxUint64
	}
	lo, hi = math.MaxUint64, 0
	for _, r := range m.f.Seqs {
		lo, hi = min(lo, r.First), max(hi, r.Last)
	}
	return lo, hi
}

// maxDirectGets is how many explicitly named sequences are read one by one
// (direct get) rather than through a consumer.
const maxDirectGets = 256

// explicitSeqs lists the named sequences when there are few enough to get
// one by one, else nil.
func (m *matcher) explicitSeqs() []uint64 {
	if len(m.f.Seqs) == 0 {
		return nil
	}
	var n uint64
	for _, r := range m.f.Seqs {
		n += r.Last - r.First + 1
		if n > maxDirectGets {
			return nil
		}
	}
	var seqs []uint64
	for _, r := range m.f.Seqs {
		for s := r.First; s <= r.Last; s++ {
			seqs = append(seqs, s)
		}
	}
	slices.Sort(seqs)
	return slices.Compact(seqs)
}

// subjects are the server-side filter subjects: one per reason, or nil.
func (m *matcher) subjects(prefix string) []string {
	var out []string
	for _, r := range m.f.Reasons {
		out = append(out, prefix+"."+string(r)+".>")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// GroupFilter returns the filter that selects exactly the records of g (as
// far as the other fields of base allow).
func GroupFilter(base Filter, g Group) Filter {
	f := base
	f.Seqs, f.Limit = nil, 0
	f.Reasons = []dlq.Reason{g.Reason}
	f.Functions = []string{cmp.Or(g.Function, None)}
	f.Statuses = []string{None}
	if g.Status != 0 {
		f.Statuses = []string{strconv.Itoa(g.Status)}
	}
	f.Codes = []string{None}
	if g.Code != "" {
		f.Codes = []string{g.Code}
	}
	return f
}
