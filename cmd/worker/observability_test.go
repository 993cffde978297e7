package main

// The fleet's observability, against a live worker process: its counters
// add up to the jobs sent, and the shipped alert rules and Grafana
// dashboard (deploy/) use only metrics it serves, and run without error
// and with data on a real Prometheus server scraping it.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

const (
	obsOK    = "ocid1.fnfunc.oc1.phx.aaaaaaaaobsok"
	obsBad   = "ocid1.fnfunc.oc1.phx.aaaaaaaaobsbad"
	obsFlaky = "ocid1.fnfunc.oc1.phx.aaaaaaaaobsflaky"

	alertRules = "../../deploy/prometheus/alerts.yml"
	alertTests = "../../deploy/prometheus/alerts_test.yml"
	dashboard  = "../../deploy/grafana/dashboards/invoke-worker.json"
)

// observed is a worker process that has settled a known mix of jobs: ok
// completed at once, bad dead-lettered (404: permanent), flaky completed
// after flakyFailures 503s in all, and events fanned out by a route into
// one job each for ok.
type observed struct {
	p                      *proc
	ok, bad, flaky, events int
	flakyFailures          int
}

func startObserved(t *testing.T) *observed {
	t.Helper()
	o := &observed{ok: 6, bad: 4, flaky: 5, events: 3, flakyFailures: 3}
	n := testenv.StartNATS(t, queue.Topology{})
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{
		obsOK:    {},
		obsBad:   {Status: http.StatusNotFound},
		obsFlaky: {FailFirst: o.flakyFailures},
	})
	cfg := map[string]any{
		"invoke": map[string]any{
			"oci":       map[string]any{"config_file": creds.ConfigFile},
			"endpoints": map[string]string{obsOK: emu.URL(), obsBad: emu.URL(), obsFlaky: emu.URL()},
		},
		"routes": []map[string]any{{
			"name": "orders", "stream": "OBS_EVENTS", "stream_subjects": []string{"obs.events.>"}, "functions": []string{obsOK},
		}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}

	o.p = &proc{admin: freeAddr(t), done: make(chan struct{})}
	args := []string{"run", "--config", file, "--nats", n.Server.ClientURL(), "--log-level", "info",
		"--set", "worker.id=obs",
		"--set", "http.listen=" + o.p.admin,
		"--set", "worker.sample_interval=200ms",
		"--set", "retry.initial_interval=50ms",
		"--set", "retry.randomization=0",
		"--set", "breaker.min_requests=1000", // never opens: the counts stay exact
	}
	o.p.cmd = exec.Command(workerBin, args...)
	o.p.cmd.Env = cleanEnv()
	o.p.cmd.Stdout, o.p.cmd.Stderr = o.p, o.p
	if err := o.p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { o.p.err = o.p.cmd.Wait(); close(o.p.done) }()
	t.Cleanup(func() {
		_ = o.p.cmd.Process.Kill()
		<-o.p.done
		if t.Failed() {
			t.Logf("worker output:\n%s", tail(o.p.logs(), 4000))
		}
	})
	testenv.Eventually(t, "worker ready", o.p.ready)

	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	publish := func(fn string, count int) {
		for i := range count {
			msg := nats.NewMsg("invoke.jobs.obs")
			msg.Header.Set(job.HeaderFunctionID, fn)
			msg.Header.Set(job.HeaderMsgID, fmt.Sprintf("%s-%d", fn[len(fn)-5:], i))
			if _, err := n.JS.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(obsOK, o.ok)
	publish(obsBad, o.bad)
	publish(obsFlaky, o.flaky)
	for i := range o.events {
		if _, err := n.JS.Publish(ctx, "obs.events.created", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	completed, dead := o.ok+o.flaky+o.events, o.bad
	testenv.Eventually(t, "every job settled", func() bool {
		return testenv.StreamCount(t, n.JS, n.Topology.ResultsStream) == uint64(completed) &&
			testenv.StreamCount(t, n.JS, n.Topology.DLQStream) == uint64(dead)
	})
	return o
}

// scrape reads /metrics into sample name with labels (as written) ->
// value, and the raw text.
func scrape(t *testing.T, admin string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, string(b)
}

// TestMetricsAddUpToTheJobsSent: after a run with a known mix of outcomes,
// /metrics counts each outcome exactly as often as jobs had it.
func TestMetricsAddUpToTheJobsSent(t *testing.T) {
	o := startObserved(t)
	completed := o.ok + o.flaky + o.events
	want := map[string]float64{
		`invoke_worker_jobs_total{outcome="completed"}`:                         float64(completed),
		`invoke_worker_jobs_total{outcome="dead_lettered_permanent"}`:           float64(o.bad),
		`invoke_worker_jobs_total{outcome="retried"}`:                           float64(o.flakyFailures),
		`invoke_worker_jobs_total{outcome="dead_lettered_exhausted"}`:           0,
		`invoke_worker_jobs_total{outcome="result_not_stored"}`:                 0,
		`invoke_worker_attempts_total{result="2xx"}`:                            float64(completed),
		`invoke_worker_attempts_total{result="4xx"}`:                            float64(o.bad),
		`invoke_worker_attempts_total{result="5xx"}`:                            float64(o.flakyFailures),
		`invoke_worker_attempt_duration_seconds_count`:                          float64(completed + o.bad + o.flakyFailures),
		`invoke_worker_job_latency_seconds_count`:                               float64(completed),
		`invoke_worker_result_publish_seconds_count`:                            float64(completed),
		`invoke_worker_waits_total{cause="retry",function="` + obsFlaky + `"}`:  float64(o.flakyFailures),
		`invoke_worker_route_events_total{outcome="fanned_out",route="orders"}`: float64(o.events),
		`invoke_worker_route_jobs_total{outcome="enqueued",route="orders"}`:     float64(o.events),
		`invoke_worker_dlq_depth{reason="permanent"}`:                           float64(o.bad),
		`invoke_worker_dlq_depth{reason="invalid"}`:                             0,
		`invoke_worker_consumer_pending`:                                        0,
		`invoke_worker_nats_connected`:                                          1,
		`invoke_worker_nats_reconnects_total`:                                   0,
		`invoke_worker_ready`:                                                   1,
		`invoke_worker_in_flight`:                                               0,
	}
	// The wait returns and the gauges follow a moment behind the last
	// result: the waiting copies' acknowledgements and the next sample.
	var got map[string]float64
	ok := func() bool {
		got, _ = scrape(t, o.p.admin)
		for k, v := range want {
			if g, found := got[k]; !found || g != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			for k, v := range want {
				if g, found := got[k]; !found || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, found, v)
				}
			}
			t.FailNow()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricNames are the invoke_worker_* metric names (and up) expressions use.
var metricName = regexp.MustCompile(`\b(invoke_worker_[a-z_]+|up)\b`)

// alertExprs reads the alert rules' expressions.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	if len(out) == 0 {
		t.Fatal("no alert rules read")
	}
	return out
}

// dashboardExprs reads every panel query (and variable query) of the
// dashboard, keyed by panel title and refId.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	if len(out) == 0 {
		t.Fatal("no dashboard queries read")
	}
	return out
}

// forPrometheus makes a dashboard query runnable as it is: Grafana's
// variables get the values the dashboard would give them.
func forPrometheus(expr string) string {
	return strings.NewReplacer(`$__rate_interval`, `1m`, `"$job"`, `".+"`).Replace(expr)
}

// TestDashboardAndAlertMetricsExistInAScrape: every metric name the
// dashboard and the rules use is served by a live worker (up is made by
// Prometheus itself).
func TestDashboardAndAlertMetricsExistInAScrape(t *testing.T) {
	o := startObserved(t)
	_, text := scrape(t, o.p.admin)
	served := map[string]bool{}
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "# TYPE ") {
			name := strings.Fields(line)[2]
			served[name] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[name+suffix] = true
			}
		}
	}
	exprs := alertExprs(t)
	for k, v := range dashboardExprs(t) {
		exprs["dashboard: "+k] = v
	}
	for where, expr := range exprs {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: no invoke_worker metric in %q", where, expr)
		}
		for _, name := range names {
			if name != "up" && !served[name] {
				t.Errorf("%s uses %s, which the worker does not serve", where, name)
			}
		}
	}
}

// TestAlertRulesPassPromtool: the rules are valid, and promtool's unit
// tests (deploy/prometheus/alerts_test.yml) pass for every alert.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus; .ci/run installs it): alert rules not checked")
	}
	for _, args := range [][]string{{"check", "rules", alertRules}, {"test", "rules", alertTests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a unit test.
	b, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	for name := range alertExprs(t) {
		if !strings.Contains(string(b), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool unit test in %s", name, alertTests)
		}
	}
}

// TestPrometheusRunsEveryQueryOnALiveWorker: a real Prometheus server
// scrapes a live worker every second with the shipped rules loaded; every
// dashboard query and alert expression runs through its HTTP API without
// error and with data, and every rule evaluates cleanly.
func TestPrometheusRunsEveryQueryOnALiveWorker(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian: apt-get install prometheus; .ci/run installs it): queries not run")
	}
	o := startObserved(t)
	dir := t.TempDir()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: invoke-worker
    static_configs:
      - targets: [%q]
`, o.p.admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	prom := &proc{done: make(chan struct{})}
	prom.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	prom.cmd.Stdout, prom.cmd.Stderr = prom, prom
	if err := prom.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { prom.err = prom.cmd.Wait(); close(prom.done) }()
	t.Cleanup(func() {
		_ = prom.cmd.Process.Kill()
		<-prom.done
		if t.Failed() {
			t.Logf("prometheus output:\n%s", tail(prom.logs(), 4000))
		}
	})
	api := "http://" + addr + "/api/v1/"

	queries := map[string]string{}
	for k, v := range dashboardExprs(t) {
		queries["dashboard "+k] = forPrometheus(v)
	}
	// An alert's expression has data only while it fires; with its
	// comparisons made bool it has data whenever its series do.
	comparison := regexp.MustCompile(` (==|!=|>=|<=|>|<) `)
	for k, v := range alertExprs(t) {
		queries["alert "+k] = comparison.ReplaceAllString(v, " $1 bool ")
	}
	run := func(q string) (int, error) {
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := getJSON(api+"query?query="+url.QueryEscape(q), &r); err != nil {
			return 0, err
		}
		if r.Status != "success" {
			return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
		}
		return len(r.Data.Result), nil
	}
	// A rate needs two scrapes: wait until every query has data, for as
	// long as the slowest reasonably takes.
	missing := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		clear(missing)
		for name, q := range queries {
			n, err := run(q)
			switch {
			case err != nil && !strings.Contains(err.Error(), "connection refused"):
				t.Fatalf("%s: %q: %v", name, q, err)
			case err != nil || n == 0:
				missing[name] = q
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range missing {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		t.Errorf("%s: no data for %q", name, missing[name])
	}

	var rs struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(api+"rules", &rs); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, g := range rs.Data.Groups {
		for _, r := range g.Rules {
			count++
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s: health %q, error %q", r.Name, r.Health, r.LastError)
			}
		}
	}
	if want := len(alertExprs(t)); count != want {
		t.Errorf("prometheus loaded %d rules, want %d", count, want)
	}
	t.Logf("%d dashboard and alert queries answered with data", len(queries))
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestContractNamesEveryServedMetric: each invoke_worker_* metric a live
// worker serves is named in docs/contract.md, and the contract names none
// that it does not serve.
func TestContractNamesEveryServedMetric(t *testing.T) {
	o := startObserved(t)
	_, text := scrape(t, o.p.admin)
	served := map[string]bool{}
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "TYPE" && strings.HasPrefix(f[2], "invoke_worker_") {
			served[f[2]] = true
		}
	}
	b, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`(invoke_worker_[a-z_]+)").FindAllStringSubmatch(string(b), -1) {
		named[m[1]] = true
	}
	for name := range served {
		if !named[name] {
			t.Errorf("%s is served but not in docs/contract.md", name)
		}
	}
	for name := range named {
		if !served[name] {
			t.Errorf("docs/contract.md names %s, which the worker does not serve", name)
		}
	}
}

// TestEveryAlertHasARunbook: each alert has a runbook line and a
// runbook_url whose anchor is its section in docs/operations.md.
func TestEveryAlertHasARunbook(t *testing.T) {
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			a := r.Annotations
			if a["summary"] == "" || a["description"] == "" || a["runbook"] == "" {
				t.Errorf("%s: summary, description and runbook annotations are required: %v", r.Alert, a)
			}
			if !strings.HasSuffix(a["runbook_url"], "docs/operations.md#"+strings.ToLower(r.Alert)) {
				t.Errorf("%s: runbook_url %q does not point at its section", r.Alert, a["runbook_url"])
			}
			if !strings.Contains(string(ops), "\n### "+r.Alert+"\n") {
				t.Errorf("%s: no section in docs/operations.md", r.Alert)
			}
		}
	}
}
