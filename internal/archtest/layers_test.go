// Package archtest holds the import rules of the codebase as a test: the
// layering docs/architecture.md describes ("Rules") fails here when a
// package imports what it must not.
package archtest

import (
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/invoke-worker/worker"

// rule says that packages matching from must not import packages matching
// to (both relative to the module; a trailing /... matches the subtree, and
// a pattern starting with ! takes what it matches out of the others).
type rule struct {
	from, to []string
	why      string
}

var (
	// libraries are the packages other programs may import.
	libraries = []string{"job", "queue", "invoke", "invoke/emulator", "dlq", "dlq/dlqops", "worker", "client", "fanout", "tracing"}
	// apps are the layers above the libraries, and the test helpers.
	apps = []string{"config", "admin", "service", "bench", "doctor", "cmd/...", "internal/testenv", "invoke/internal/ocivector"}
)

var rules = []rule{
	{[]string{"queue"}, []string{"invoke/...", "dlq/...", "worker", "client", "fanout"}, "queue is JetStream only: it knows nothing of the function client, records or the engine"},
	{[]string{"invoke/..."}, []string{"queue", "dlq/...", "worker", "client", "fanout"}, "invoke is the function client only"},
	{[]string{"dlq"}, []string{"dlq/dlqops", "queue", "invoke/...", "worker", "client", "fanout"}, "dlq is the record format and its writer, on the worker's path: it knows nothing of the operations on the stream"},
	{[]string{"dlq/dlqops"}, []string{"queue", "invoke/...", "worker", "client", "fanout"}, "dlqops is the operator's toolkit on the dead-letter stream, on JetStream and dlq alone"},
	{[]string{"job"}, []string{"queue", "invoke/...", "dlq/...", "worker", "client", "fanout"}, "job is the wire format every other package shares: a leaf"},
	{[]string{"worker"}, []string{"queue", "client", "fanout", "dlq/dlqops"}, "worker declares the small interfaces it needs (service wires queue into them), and links the dead-letter record, not the operator's toolkit"},
	{[]string{"job", "queue", "invoke/...", "dlq/...", "worker", "client", "fanout"}, []string{"tracing"}, "the engine and fan-out take a trace.TracerProvider: they depend on the OpenTelemetry API, never on the SDK or an exporter (service wires tracing in)"},
	{libraries, apps, "libraries never reach for configuration, the admin server, the bench, test helpers or commands"},
	{[]string{"..."}, []string{"cmd/..."}, "nothing imports a command"},
	{[]string{"internal/rebind"}, []string{"..."}, "rebind, the consumer loop the worker and the routes share, is a leaf"},
	{[]string{"...", "!cmd/...", "!doctor"}, []string{"service"}, "service assembles the process from configuration: only commands run it, and doctor checks what it would assemble (its mappings from configuration)"},
}

// imports returns each package of the module with its non-test imports
// inside the module, relative names.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports ","}}`, module+"/...").Output()
	if err != nil {
		t.Skipf("go list: %v (the go tool is needed for this test)", err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if rel == "" {
			rel = "."
		}
		graph[rel] = nil
		for _, d := range strings.Split(deps, ",") {
			if strings.HasPrefix(d, module+"/") {
				graph[rel] = append(graph[rel], strings.TrimPrefix(d, module+"/"))
			}
		}
	}
	return graph
}

func matches(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if not, ok := strings.CutPrefix(p, "!"); ok && matches([]string{not}, pkg) {
			return false
		}
	}
	return slices.ContainsFunc(patterns, func(p string) bool {
		if p == "..." {
			return true
		}
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			return pkg == base || strings.HasPrefix(pkg, base+"/")
		}
		return pkg == p
	})
}

// violations lists every import in graph that a rule forbids.
func violations(graph map[string][]string, rules []rule) []string {
	var out []string
	for pkg, deps := range graph {
		for _, r := range rules {
			if !matches(r.from, pkg) {
				continue
			}
			for _, d := range deps {
				if matches(r.to, d) && !(matches(r.from, d) && d == pkg) {
					out = append(out, fmt.Sprintf("%s imports %s: %s", pkg, d, r.why))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestImportRules(t *testing.T) {
	graph := imports(t)
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages", len(graph))
	}
	for _, v := range violations(graph, rules) {
		t.Error(v)
	}
}

// TestImportRulesCatchABrokenRule: the checker itself fails on a graph that
// breaks each rule on purpose.
func TestImportRulesCatchABrokenRule(t *testing.T) {
	broken := map[string][]string{
		"queue":            {"invoke"},
		"invoke":           {"queue", "invoke/internal/ocivector"},
		"dlq":              {"worker", "dlq/dlqops"},
		"dlq/dlqops":       {"invoke"},
		"job":              {"dlq"},
		"worker":           {"queue", "dlq/dlqops"},
		"client":           {"config"},
		"fanout":           {"internal/testenv", "tracing"},
		"config":           {"cmd/worker"},
		"invoke/emulator":  {"bench"},
		"internal/testenv": {"worker"}, // allowed
		"fanout/sub":       {"service"},
		"internal/rebind":  {"job"},
		"cmd/worker":       {"service"}, // allowed
		"doctor":           {"service"}, // allowed
		"admin":            {"service"},
	}
	got := violations(broken, rules)
	for _, want := range []string{"queue imports invoke", "invoke imports queue", "dlq imports worker", "dlq imports dlq/dlqops",
		"dlq/dlqops imports invoke", "job imports dlq", "worker imports queue", "worker imports dlq/dlqops", "client imports config",
		"fanout imports internal/testenv", "fanout imports tracing", "config imports cmd/worker", "invoke/emulator imports bench",
		"invoke imports invoke/internal/ocivector", "fanout/sub imports service", "admin imports service", "internal/rebind imports job"} {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, want+":") }) {
			t.Errorf("no violation reported for %q; got %v", want, got)
		}
	}
	for _, v := range got {
		if strings.HasPrefix(v, "internal/testenv imports worker") || strings.HasPrefix(v, "cmd/worker imports service") ||
			strings.HasPrefix(v, "doctor imports service") {
			t.Errorf("allowed import reported: %s", v)
		}
	}
}

// TestEngineLinksNoExporter: the worker and fan-out packages, with all
// they import, link the OpenTelemetry API only: the SDK and the exporters
// (and gRPC with them) come in through service's wiring alone.
func TestEngineLinksNoExporter(t *testing.T) {
	for _, pkg := range []string{"worker", "fanout"} {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
		if err != nil {
			t.Skipf("go list: %v (the go tool is needed for this test)", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(dep, "go.opentelemetry.io/otel/exporters") ||
				strings.HasPrefix(dep, "google.golang.org/grpc") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
