package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Report is the outcome of a run.
type Report struct {
	Machine  Machine     `json:"machine"`
	Settings Settings    `json:"settings"`
	Worker   Measurement `json:"worker"`
	// Ceilings and Ratios are set with Config.Ceilings.
	Ceilings *Ceilings `json:"ceilings,omitempty"`
	Ratios   *Ratios   `json:"ratios,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GoVersion  string `json:"go_version"`
	// Load1Start and Load1End are the 1-minute load average when the run
	// started and ended (0 where unknown): other processes' load shows
	// up in every figure.
	Load1Start float64 `json:"load1_start"`
	Load1End   float64 `json:"load1_end"`
}

// Settings are the run's parameters, after defaults.
type Settings struct {
	Jobs        int `json:"jobs"`
	Warmup      int `json:"warmup_jobs"`
	Concurrency int `json:"concurrency"`
	BodySize    int `json:"body_size"`
	// ResponseSize is 0 when the function echoes the body.
	ResponseSize int     `json:"response_size"`
	Latency      string  `json:"function_latency"`
	Rate         float64 `json:"rate"` // 0: as fast as possible
	MaxPending   int     `json:"max_pending"`
	Rounds       int     `json:"rounds"`
	Signed       bool    `json:"signed"`
	// NATS is "embedded" (a fresh server per measurement) or "external".
	NATS string `json:"nats"`
	// Isolated is true when the worker, (a) and (d) each ran in a process
	// of their own (Config.Spawn), false when they shared this one.
	Isolated bool `json:"isolated"`
}

// Measurement is one measured loop, or the signing rate.
type Measurement struct {
	Name string `json:"name"`
	// Jobs is how many measured jobs completed (requests, for the HTTP
	// ceilings; signatures, for the signing rate).
	Jobs      int     `json:"jobs"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// Duplicates counts results received more than once (redeliveries).
	Duplicates int `json:"duplicates,omitempty"`
	// EndToEnd is enqueue to result (request to answer, for HTTP).
	EndToEnd *Latency `json:"end_to_end,omitempty"`
	// Added is EndToEnd minus the function's own time as the emulator
	// recorded it: what queueing, NATS and the consumer add.
	Added *Latency `json:"added,omitempty"`
	// CPUPer1000 is process CPU seconds (user + system) per 1,000 jobs:
	// of the consumer's own process when isolated (Settings.Isolated), of
	// the whole bench process otherwise; likewise AllocsPerJob and PeakRSS.
	CPUPer1000 float64 `json:"cpu_seconds_per_1000"`
	// AllocsPerJob is process heap allocations per job.
	AllocsPerJob float64 `json:"allocs_per_job"`
	// PeakRSS is the peak resident set in bytes; PeakRSSScope says over
	// what: "measurement" (restarted before it) or "process" (since the
	// process started, where the peak cannot be restarted).
	PeakRSS      int64  `json:"peak_rss_bytes"`
	PeakRSSScope string `json:"peak_rss_scope"`
}

// Latency is a distribution's nearest-rank percentiles.
type Latency struct {
	P50, P95, P99, Max time.Duration
}

// MarshalJSON writes milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return json.Marshal(struct {
		P50 float64 `json:"p50_ms"`
		P95 float64 `json:"p95_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	}{ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var v struct {
		P50 float64 `json:"p50_ms"`
		P95 float64 `json:"p95_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d := func(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }
	*l = Latency{d(v.P50), d(v.P95), d(v.P99), d(v.Max)}
	return nil
}

// Ceilings are the bounds measured with Config.Ceilings.
type Ceilings struct {
	NATSLoop     Measurement `json:"nats_loop"`     // (a)
	Signing      Measurement `json:"signing"`       // (b)
	HTTPSigned   Measurement `json:"http_signed"`   // (c)
	HTTPUnsigned Measurement `json:"http_unsigned"` // (c)
	BareLoop     Measurement `json:"bare_loop"`     // (d)
}

// Ratios put the worker's throughput against the ceilings.
type Ratios struct {
	// BareLoop is worker jobs/s ÷ bare loop (d) jobs/s; over several
	// rounds, the median of the rounds' ratios (Rounds).
	BareLoop float64   `json:"worker_to_bare_loop"`
	Rounds   []float64 `json:"rounds,omitempty"`
	// Signing is worker jobs/s ÷ signatures/s on all cores (b).
	Signing float64 `json:"worker_to_signing"`
	// CPUPerJob is the worker's process CPU per job ÷ the bare loop's (the
	// median over rounds): on a busy machine it moves less than the
	// throughput does.
	CPUPerJob float64 `json:"worker_cpu_per_job_to_bare_loop"`
	// Target is the goal for BareLoop.
	Target float64 `json:"target"`
}

// latencyOf returns the percentiles of ds, sorting it in place; nil when
// ds is empty.
func latencyOf(ds []time.Duration) *Latency {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(len(ds)))) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return &Latency{P50: rank(50), P95: rank(95), P99: rank(99), Max: ds[len(ds)-1]}
}

// ratio is a / b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func machine() Machine {
	return Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GoVersion:  runtime.Version(),
		Load1Start: loadAverage(),
	}
}

// loadAverage is the 1-minute load average from /proc/loadavg, 0
// elsewhere.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// cpuModel is the first "model name" of /proc/cpuinfo, "" elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: the settings, the machine, one
// row per measurement and the ratios.
func (r Report) WriteTable(w io.Writer) error {
	s, m := r.Settings, r.Machine
	resp := "echo"
	if s.ResponseSize > 0 {
		resp = fmt.Sprintf("%d B", s.ResponseSize)
	}
	sign := "unsigned (invoke.oci.auth none, nothing verified)"
	if s.Signed {
		sign = "signed (RSA-2048 API key via api_key, every signature verified)"
	}
	rate := fmt.Sprintf("enqueued as fast as possible (%d acks outstanding at most)", s.MaxPending)
	if s.Rate > 0 {
		rate = fmt.Sprintf("enqueued open-loop at %g jobs/s", s.Rate)
	}
	nats := "a fresh embedded NATS server per measurement"
	if s.NATS != "embedded" {
		nats = "fresh streams per measurement on " + s.NATS + " NATS"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "worker bench: %d jobs per measurement (+%d warm-up, not measured), concurrency %d, body %d B, response %s, function latency %s\n",
		s.Jobs, s.Warmup, s.Concurrency, s.BodySize, resp, s.Latency)
	fmt.Fprintf(&b, "  %s; %s; %s\n", sign, rate, nats)
	if s.Isolated {
		b.WriteString("  the worker, (a) and (d) each run in a fresh process of their own; the load side (NATS, emulator, load generator) holds its garbage collector during measured windows\n")
	} else {
		b.WriteString("  everything in one process: the worker, (a) and (d) share it with NATS, the emulator and the load generator\n")
	}
	if s.Rounds > 1 {
		fmt.Fprintf(&b, "  the worker and (d) measured in turn %d times; their rows are the runs of median throughput\n", s.Rounds)
	}
	model := m.CPUModel
	if model == "" {
		model = "unknown CPU"
	}
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %s/%s, %s", m.CPUs, m.GOMAXPROCS, model, m.OS, m.Arch, m.GoVersion)
	if m.Load1Start > 0 || m.Load1End > 0 {
		fmt.Fprintf(&b, "; load average %.2f at the start, %.2f at the end", m.Load1Start, m.Load1End)
	}
	b.WriteString("\n\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	rows := []Measurement{r.Worker}
	var bare float64
	if c := r.Ceilings; c != nil {
		rows = append(rows, c.NATSLoop, c.Signing, c.HTTPSigned, c.HTTPUnsigned, c.BareLoop)
		bare = c.BareLoop.PerSecond
	}
	// Names padded to one width read left-aligned in right-aligned columns.
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	nameWidth := len("measurement")
	for _, row := range rows {
		nameWidth = max(nameWidth, utf8.RuneCountInString(row.Name))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", nameWidth-utf8.RuneCountInString(s)) }
	fmt.Fprintln(tw, pad("measurement")+"\tjobs\tper s\t÷ (d)\te2e p50\tp95\tp99\tmax\tadded p50\tp95\tp99\tmax\tCPU s/1k\tallocs/job\tpeak RSS\t")
	for _, row := range rows {
		vs := "-"
		if bare > 0 {
			vs = fmt.Sprintf("%.2f", row.PerSecond/bare)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%.2f\t%s\t%s\t\n",
			pad(row.Name), row.Jobs, row.PerSecond, vs, latencyCells(row.EndToEnd), latencyCells(row.Added),
			row.CPUPer1000, allocCell(row.AllocsPerJob), rssCell(row.PeakRSS, row.PeakRSSScope))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.Reset()
	if q := r.Ratios; q != nil {
		verdict := "below"
		if q.BareLoop >= q.Target {
			verdict = "meets"
		}
		rounds := ""
		if len(q.Rounds) > 1 {
			each := make([]string, len(q.Rounds))
			for i, v := range q.Rounds {
				each[i] = fmt.Sprintf("%.2f", v)
			}
			rounds = fmt.Sprintf("median of %d rounds: %s; ", len(q.Rounds), strings.Join(each, " "))
		}
		fmt.Fprintf(&b, "\nworker ÷ (d) bare loop: %.2f (%s%s the %.2f target)\n", q.BareLoop, rounds, verdict, q.Target)
		fmt.Fprintf(&b, "worker ÷ (b) signing:   %.2f\n", q.Signing)
		fmt.Fprintf(&b, "CPU per job, worker ÷ (d): %.2f\n", q.CPUPerJob)
	}
	load := "emulator and load generator"
	if s.NATS == "embedded" {
		load = "emulator, load generator and the embedded NATS server"
	}
	if s.Isolated {
		fmt.Fprintf(&b, "\nCPU, allocations and RSS are the consumer process's own for the worker, (a) and (d); for (b) and (c), the load side's (%s).\n", load)
	} else {
		fmt.Fprintf(&b, "\nCPU, allocations and RSS are the whole process's: worker, %s.\n", load)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func latencyCells(l *Latency) string {
	if l == nil {
		return "-\t-\t-\t-"
	}
	return strings.Join([]string{fmtDur(l.P50), fmtDur(l.P95), fmtDur(l.P99), fmtDur(l.Max)}, "\t")
}

func allocCell(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func rssCell(b int64, scope string) string {
	if b == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	if scope == "process" {
		s += "*" // since process start: the peak could not be restarted
	}
	return s
}

// fmtDur prints a latency compactly with about three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
