package dlqops_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/job"
)

// TestListFiltersAndGroupsSixtyRecords writes 60 records of three reasons
// over four functions and checks that every filter selects exactly the
// records a plain reading of the fixtures selects, that stats groups and
// counts them, that each group's filter selects exactly its records, and
// that none of this changed the stream.
func TestListFiltersAndGroupsSixtyRecords(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	base := time.Now().UTC().Truncate(time.Millisecond)
	fx := sixty(base)
	seqs := write(t, n, fx)
	s := newStore(t, n)
	before := stateOf(t, n, n.Topology.DLQStream)

	all, err := list(ctxT(t), s, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 60 {
		t.Fatalf("listed %d records, want 60", len(all))
	}
	for i, r := range all {
		f := fx[i]
		if r.Seq != seqs[i] || r.JobID != f.id || r.Reason != f.reason || r.FunctionID != f.function || r.Status != f.status ||
			r.Code != f.code || r.Attempts != f.attempts || r.Error != f.err || !r.FailedAt.Equal(f.failedAt) ||
			r.Size != len(f.body) || r.Body != nil || len(r.History) != f.attempts || r.OriginalSubject != "invoke.jobs.default" ||
			r.Worker != "w-1" || r.Subject != "invoke.dlq."+string(f.reason)+"."+f.id {
			t.Fatalf("record %d read back as %+v, want %+v", i, r, f)
		}
	}

	type tc struct {
		name   string
		filter dlqops.Filter
		want   func(i int, f fixture) bool
	}
	grep := regexp.MustCompile("(?i)CONNECTION refused")
	cases := []tc{
		{"reason", dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonExhausted}}, func(_ int, f fixture) bool { return f.reason == dlq.ReasonExhausted }},
		{"two reasons", dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonPermanent, dlq.ReasonInvalid}}, func(_ int, f fixture) bool { return f.reason != dlq.ReasonExhausted }},
		{"function", dlqops.Filter{Functions: []string{fnB}}, func(_ int, f fixture) bool { return f.function == fnB }},
		{"no function", dlqops.Filter{Functions: []string{dlqops.None}}, func(_ int, f fixture) bool { return f.function == "" }},
		{"status", dlqops.Filter{Statuses: []string{"503"}}, func(_ int, f fixture) bool { return f.status == 503 }},
		{"status class", dlqops.Filter{Statuses: []string{"4xx"}}, func(_ int, f fixture) bool { return f.status >= 400 && f.status < 500 }},
		{"no status", dlqops.Filter{Statuses: []string{dlqops.None}}, func(_ int, f fixture) bool { return f.status == 0 }},
		{"code", dlqops.Filter{Codes: []string{"toomanyrequests"}}, func(_ int, f fixture) bool { return f.code == "TooManyRequests" }},
		{"no code", dlqops.Filter{Codes: []string{dlqops.None}}, func(_ int, f fixture) bool { return f.code == "" }},
		{"since", dlqops.Filter{Since: base.Add(-10 * time.Minute)}, func(_ int, f fixture) bool { return !f.failedAt.Before(base.Add(-10 * time.Minute)) }},
		{"until", dlqops.Filter{Until: base.Add(-50 * time.Minute)}, func(_ int, f fixture) bool { return f.failedAt.Before(base.Add(-50 * time.Minute)) }},
		{"since and until", dlqops.Filter{Since: base.Add(-30 * time.Minute), Until: base.Add(-20 * time.Minute)}, func(_ int, f fixture) bool {
			return !f.failedAt.Before(base.Add(-30*time.Minute)) && f.failedAt.Before(base.Add(-20*time.Minute))
		}},
		{"grep", dlqops.Filter{Grep: "CONNECTION refused"}, func(_ int, f fixture) bool { return grep.MatchString(f.err) }},
		{"combined", dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonExhausted}, Functions: []string{fnA, fnC}, Statuses: []string{"5xx", "none"}},
			func(_ int, f fixture) bool {
				return f.reason == dlq.ReasonExhausted && (f.function == fnA || f.function == fnC) && (f.status >= 500 || f.status == 0)
			}},
		{"seqs", dlqops.Filter{Seqs: []dlqops.SeqRange{{First: seqs[3], Last: seqs[7]}, {First: seqs[40], Last: seqs[40]}}},
			func(i int, _ fixture) bool { return i >= 3 && i <= 7 || i == 40 }},
		{"seqs and reason", dlqops.Filter{Seqs: []dlqops.SeqRange{{First: seqs[0], Last: seqs[59]}}, Reasons: []dlq.Reason{dlq.ReasonInvalid}},
			func(_ int, f fixture) bool { return f.reason == dlq.ReasonInvalid }},
		{"nothing", dlqops.Filter{Functions: []string{"ocid1.fnfunc.oc1.phx.aaaaaaaanobody"}}, func(int, fixture) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for i, f := range fx {
				if c.want(i, f) {
					want = append(want, f.id)
				}
			}
			got := ids(t, s, c.filter)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d records %v,\nwant %d %v", len(got), got, len(want), want)
			}
			if len(want) > 3 {
				c.filter.Limit = 3
				if got := ids(t, s, c.filter); !slices.Equal(got, want[:3]) {
					t.Fatalf("limit 3: got %v, want %v", got, want[:3])
				}
			}
		})
	}

	st, err := s.Stats(ctxT(t), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		fn     string
		reason dlq.Reason
		status int
		code   string
	}
	wantGroups := map[key]int{}
	for _, f := range fx {
		wantGroups[key{f.function, f.reason, f.status, f.code}]++
	}
	if st.Records != 60 || len(st.Groups) != len(wantGroups) {
		t.Fatalf("stats: %d records in %d groups, want 60 in %d", st.Records, len(st.Groups), len(wantGroups))
	}
	total := 0
	for i, g := range st.Groups {
		k := key{g.Function, g.Reason, g.Status, g.Code}
		if g.Count != wantGroups[k] {
			t.Fatalf("group %+v: count %d, want %d", k, g.Count, wantGroups[k])
		}
		if i > 0 && g.Count > st.Groups[i-1].Count {
			t.Fatalf("groups not largest first: %d after %d", g.Count, st.Groups[i-1].Count)
		}
		if g.First.After(g.Last) || g.FirstSeq > g.LastSeq {
			t.Fatalf("group %+v: first %v after last %v", k, g.First, g.Last)
		}
		total += g.Count
		// The group's own filter selects exactly its records.
		recs, err := list(ctxT(t), s, dlqops.GroupFilter(dlqops.Filter{}, g))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != g.Count {
			t.Fatalf("group %+v: its filter selects %d records, want %d", k, len(recs), g.Count)
		}
		for _, r := range recs {
			if (key{r.FunctionID, r.Reason, r.Status, r.Code}) != k {
				t.Fatalf("group %+v: its filter selects %+v", k, r)
			}
		}
	}
	if total != 60 {
		t.Fatalf("groups add up to %d, want 60", total)
	}

	// Stats narrowed by a filter groups only what the filter selects.
	st, err = s.Stats(ctxT(t), dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonPermanent}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 20 {
		t.Fatalf("permanent: %d records, want 20", st.Records)
	}

	if after := stateOf(t, n, n.Topology.DLQStream); after != before {
		t.Fatalf("reading changed the stream: %+v, was %+v", after, before)
	}
}

func ids(t *testing.T, s *dlqops.Store, f dlqops.Filter) []string {
	t.Helper()
	recs, err := list(ctxT(t), s, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.JobID)
	}
	return out
}

// TestGetBinaryBodyAndFiveAttemptHistory reads one record whole: its
// binary body byte for byte and its five attempts.
func TestGetBinaryBodyAndFiveAttemptHistory(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	body := make([]byte, 3000)
	_, _ = rand.Read(body)
	body[0] = 0xff // never valid UTF-8
	f := fixture{id: "bin-1", reason: dlq.ReasonExhausted, function: fnA, status: 504, code: "FunctionInvokeTimeout", attempts: 5,
		err: "gave up after 5 attempts", failedAt: now, body: body}
	for i := 1; i <= 5; i++ {
		a := dlq.Attempt{N: i, At: now.Add(time.Duration(i-5) * time.Second), Status: 503, Code: "FunctionInvokeServiceUnavailable", DurationMs: 40, Worker: "w-2", Breaker: "closed", Error: "out of capacity"}
		if i == 5 {
			a.Status, a.Code, a.Error = 504, "FunctionInvokeTimeout", "timed out"
		}
		f.history = append(f.history, a)
	}
	seq := write(t, n, []fixture{f})[0]
	s := newStore(t, n)

	r, err := s.Get(ctxT(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, body) || r.Size != len(body) {
		t.Fatalf("body: %d bytes, not byte-exact", len(r.Body))
	}
	if len(r.History) != 5 || r.History[4].Code != "FunctionInvokeTimeout" || r.Code != "FunctionInvokeTimeout" || r.History[0].Breaker != "closed" {
		t.Fatalf("history: %+v (code %q)", r.History, r.Code)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "Nats-Sequence") || k == "Nats-Stream" || k == "Nats-Time-Stamp" {
			t.Fatalf("transport header %s kept in the record's headers", k)
		}
	}
	if r.Header.Get(job.HeaderOriginalMsgID) != "bin-1" || r.Header.Get(dlq.HeaderAttemptHistory) == "" {
		t.Fatalf("headers: %v", r.Header)
	}
	if _, err := s.Get(ctxT(t), seq+100); !errors.Is(err, dlqops.ErrRecordNotFound) {
		t.Fatalf("Get of a missing sequence: %v, want ErrRecordNotFound", err)
	}
}

// TestListReadsASnapshot checks that records stored while a listing runs
// are not part of it, so a replay never meets the records of its own jobs.
func TestListReadsASnapshot(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	fx := sixty(time.Now())
	write(t, n, fx[:30])
	s := newStore(t, n)
	got := 0
	for r, err := range s.Records(ctxT(t), dlqops.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			write(t, n, fx[30:])
		}
		got++
		_ = r
	}
	if got != 30 {
		t.Fatalf("listed %d records, want the 30 present when the listing started", got)
	}
}

func TestFilterValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		f       dlqops.Filter
		wantErr string // the field named, "" for valid
	}{
		{"zero", dlqops.Filter{}, ""},
		{"everything", dlqops.Filter{Reasons: dlq.Reasons(), Functions: []string{fnA, dlqops.None}, Statuses: []string{"503", "4xx", "none"},
			Codes: []string{"TooManyRequests", "none"}, Since: time.Unix(1, 0), Until: time.Unix(2, 0), Grep: "time(d )?out", Limit: 3}, ""},
		{"reason", dlqops.Filter{Reasons: []dlq.Reason{"broken"}}, "reason"},
		{"function", dlqops.Filter{Functions: []string{"fn-1"}}, "function"},
		{"status", dlqops.Filter{Statuses: []string{"700"}}, "status"},
		{"status class", dlqops.Filter{Statuses: []string{"6xx"}}, "status"},
		{"code", dlqops.Filter{Codes: []string{"two words"}}, "code"},
		{"until before since", dlqops.Filter{Since: time.Unix(2, 0), Until: time.Unix(1, 0)}, "until"},
		{"grep", dlqops.Filter{Grep: "("}, "grep"},
		{"limit", dlqops.Filter{Limit: -1}, "limit"},
		{"seq", dlqops.Filter{Seqs: []dlqops.SeqRange{{First: 5, Last: 4}}}, "seq"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.f.Validate()
			var fe *dlqops.FieldError
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (!errors.As(err, &fe) || fe.Field != c.wantErr):
				t.Fatalf("error %v, want one about %s", err, c.wantErr)
			}
		})
	}
	for in, want := range map[string]dlqops.SeqRange{"42": {42, 42}, "40-50": {40, 50}} {
		got, err := dlqops.ParseSeqRange(in)
		if err != nil || got != want {
			t.Fatalf("ParseSeqRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "x", "5-4", "-3", "3-", "1.5"} {
		if _, err := dlqops.ParseSeqRange(in); err == nil {
			t.Fatalf("ParseSeqRange(%q) accepted", in)
		}
	}
}
