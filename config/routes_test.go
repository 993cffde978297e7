package config

import (
	"errors"
	"reflect"
	"testing"
)

const routesYAML = `
routes:
  - name: orders
    stream: ORDERS
    stream_subjects: [orders.>]
    subjects: [orders.created.>]
    functions:
      - ocid1.fnfunc.oc1.phx.aaaaaaaabilling
      - ocid1.fnfunc.oc1.phx.aaaaaaaashipping
    intent: cloudevent
    headers:
      copy: [X-Tenant]
      rename: {X-Deadline: Invoke-Deadline}
      set: {Invoke-Timeout: 30s}
    cloudevent:
      source: /shop/orders
      type: com.example.order
  - name: audit
    stream: AUDIT
    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaaudit]
    job_subject: invoke.jobs.audit.all
    deliver: new
`

func TestRoutesLoadFromTheFile(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, LoadOptions{File: writeFile(t, routesYAML)})
	want := []Route{
		{
			Name: "orders", Stream: "ORDERS", StreamSubjects: []string{"orders.>"}, Subjects: []string{"orders.created.>"},
			Functions: []string{"ocid1.fnfunc.oc1.phx.aaaaaaaabilling", "ocid1.fnfunc.oc1.phx.aaaaaaaashipping"},
			Intent:    "cloudevent",
			Headers: RouteHeaders{
				Copy:   []string{"X-Tenant"},
				Rename: map[string]string{"X-Deadline": "Invoke-Deadline"},
				Set:    map[string]string{"Invoke-Timeout": "30s"},
			},
			CloudEvent: RouteCloudEvent{Source: "/shop/orders", Type: "com.example.order"},
		},
		{Name: "audit", Stream: "AUDIT", Functions: []string{"ocid1.fnfunc.oc1.phx.aaaaaaaaaudit"}, JobSubject: "invoke.jobs.audit.all", Deliver: "new"},
	}
	if !reflect.DeepEqual(cfg.Routes, want) {
		t.Fatalf("routes:\n got %+v\nwant %+v", cfg.Routes, want)
	}
	if got := cfg.Routes[0].JobSubjectOf(); got != "invoke.jobs.orders" {
		t.Errorf("default job subject %q", got)
	}
	// Clone does not share the routes' lists and maps.
	c := cfg.Clone()
	c.Routes[0].Functions[0] = "changed"
	c.Routes[0].Headers.Set["Invoke-Timeout"] = "1s"
	if cfg.Routes[0].Functions[0] == "changed" || cfg.Routes[0].Headers.Set["Invoke-Timeout"] != "30s" {
		t.Error("Clone shares route lists or maps")
	}
}

func TestRouteErrorsNameTheElementAndKey(t *testing.T) {
	t.Parallel()
	ok := "    stream: S\n    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaok]\n"
	tests := []struct {
		name, body string
		frags      []string
	}{
		{"no functions", "routes:\n  - name: a\n" + ok + "  - name: b\n    stream: S\n", []string{"config: routes[1].functions: must list at least one function OCID"}},
		{"bad function", "routes:\n  - name: a\n    stream: S\n    functions: [ocid1.bucket.oc1..x]\n", []string{"routes[0].functions:", "not a function OCID"}},
		{"duplicate function", "routes:\n  - name: a\n    stream: S\n    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaok, ocid1.fnfunc.oc1.phx.aaaaaaaaok]\n", []string{"routes[0].functions:", "listed twice"}},
		{"no name", "routes:\n  - stream: S\n    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaok]\n", []string{"routes[0].name: is required"}},
		{"bad name", "routes:\n  - name: a.b\n" + ok, []string{"routes[0].name:", `"a.b"`}},
		{"duplicate name", "routes:\n  - name: a\n" + ok + "  - name: a\n" + ok, []string{"routes[1].name:", "also the name of routes[0]"}},
		{"no stream", "routes:\n  - name: a\n    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaok]\n", []string{"routes[0].stream: must not be empty"}},
		{"jobs stream", "routes:\n  - name: a\n    stream: INVOKE_JOBS\n    functions: [ocid1.fnfunc.oc1.phx.aaaaaaaaok]\n", []string{"routes[0].stream:", "jobs stream"}},
		{"bad intent", "routes:\n  - name: a\n" + ok + "    intent: telepathy\n", []string{"routes[0].intent:", "telepathy"}},
		{"bad deliver", "routes:\n  - name: a\n" + ok + "    deliver: last\n", []string{"routes[0].deliver:"}},
		{"job subject elsewhere", "routes:\n  - name: a\n" + ok + "    job_subject: other.jobs\n", []string{"routes[0].job_subject:", "not under streams.jobs_subjects"}},
		{"job subject wildcard", "routes:\n  - name: a\n" + ok + "    job_subject: invoke.jobs.*\n", []string{"routes[0].job_subject:", "wildcards"}},
		{"stream overlaps jobs", "routes:\n  - name: a\n" + ok + "    stream_subjects: [invoke.>]\n", []string{"routes[0].stream_subjects:", "overlaps"}},
		{"bad filter", "routes:\n  - name: a\n" + ok + "    subjects: [a..b]\n", []string{"routes[0].subjects:", "empty token"}},
		{"set owned header", "routes:\n  - name: a\n" + ok + "    headers:\n      set: {Nats-Msg-Id: x}\n", []string{"routes[0].headers.set:", "set by the route"}},
		{"rename onto owned header", "routes:\n  - name: a\n" + ok + "    headers:\n      rename: {X-Fn: Invoke-Function-Id}\n", []string{"routes[0].headers.rename:", "set by the route"}},
		{"content type with cloudevent", "routes:\n  - name: a\n" + ok + "    intent: cloudevent\n    headers:\n      set: {Content-Type: text/plain}\n", []string{"routes[0].headers.set:", "cloudevents+json"}},
		{"bad header name", "routes:\n  - name: a\n" + ok + "    headers:\n      copy: [\"a b\"]\n", []string{"routes[0].headers.copy:", `"a b"`}},
		{"cloudevent without intent", "routes:\n  - name: a\n" + ok + "    cloudevent: {type: x}\n", []string{"routes[0].cloudevent:", "intent cloudevent only"}},
		{"unknown key", "routes:\n  - name: a\n" + ok + "    fuctions: []\n", []string{"routes[0].fuctions: unknown key (line 5; did you mean routes[0].functions?)"}},
		{"unknown nested key", "routes:\n  - name: a\n" + ok + "    headers:\n      cpy: []\n", []string{"routes[0].headers.cpy: unknown key", "routes[0].headers.copy"}},
		{"section as key", "routes:\n  - name: a\n" + ok + "    headers: x\n", []string{"routes[0].headers: must be a mapping of keys"}},
		{"not a list", "routes:\n  name: a\n", []string{"config: routes: must be a list of mappings, got a mapping (line 2)"}},
		{"element not a mapping", "routes:\n  - orders\n", []string{"config: routes[0]: must be a mapping of keys, got a single value (line 2)"}},
		{"typo of the section", "route: []\n", []string{"route: unknown key", "did you mean routes?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(LoadOptions{File: writeFile(t, tt.body)})
			wantErr(t, err, tt.frags...)
		})
	}
}

func TestRoutesAreFileOnly(t *testing.T) {
	t.Parallel()
	_, err := Load(LoadOptions{Environ: []string{"WORKER_ROUTES=x"}})
	wantErr(t, err, "WORKER_ROUTES: routes can only be set in the configuration file")
	_, err = Load(LoadOptions{Environ: []string{"WORKER_ROUTES_0_NAME=x"}})
	wantErr(t, err, "routes can only be set in the configuration file")
	_, err = Load(LoadOptions{Overrides: []Override{{Key: "routes[0].name", Value: "x"}}})
	wantErr(t, err, "routes[0].name: routes can only be set in the configuration file")
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "routes[0].name" {
		t.Errorf("KeyError %v", ke)
	}
}
