package client_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/client"
)

// TestParseJobLine: a line's keys win over the template, a JSON body other
// than a string is sent as JSON, and a bad line says what is wrong.
func TestParseJobLine(t *testing.T) {
	t.Parallel()
	const fn = "ocid1.fnfunc.oc1.phx.aaaaaaaaline"
	tmpl := client.Job{FunctionID: fn, Subject: "invoke.jobs.default", Header: nats.Header{"X-A": {"tmpl"}, "X-B": {"tmpl"}}}

	j, err := client.ParseJobLine([]byte(`{"id": "j-1", "headers": {"X-A": "line"}, "body": {"n": 1}}`), tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "j-1" || j.FunctionID != fn || j.Subject != "invoke.jobs.default" || string(j.Body) != `{"n": 1}` ||
		j.ContentType != "application/json" || j.Header.Get("X-A") != "line" || j.Header.Get("X-B") != "tmpl" {
		t.Fatalf("job %+v", j)
	}
	if tmpl.Header.Get("X-A") != "tmpl" {
		t.Fatal("the line changed the template's headers")
	}
	if j, err = client.ParseJobLine([]byte(`{"body": "text", "subject": "invoke.jobs.other"}`), tmpl); err != nil || string(j.Body) != "text" || j.ContentType != "" || j.Subject != "invoke.jobs.other" {
		t.Fatalf("text body: %+v, %v", j, err)
	}
	if j, err = client.ParseJobLine([]byte(`{"body_base64": "AAEC/w=="}`), tmpl); err != nil || string(j.Body) != "\x00\x01\x02\xff" {
		t.Fatalf("base64 body: %q, %v", j.Body, err)
	}
	for line, want := range map[string]string{
		`{"body": "x", "body_base64": "eA=="}`: "exclude each other",
		`{"bdy": "x"}`:                         "bdy",
		`{"id": "a"} {"id": "b"}`:              "more than one",
		`not json`:                             "not a JSON object",
		`{"body_base64": "%%"}`:                "body_base64",
	} {
		if _, err := client.ParseJobLine([]byte(line), tmpl); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", line, err, want)
		}
	}
	if _, err := client.ParseJobLine([]byte(`{"id": "x"}`), client.Job{}); err == nil || !strings.Contains(err.Error(), "no function") {
		t.Errorf("no function: %v", err)
	}
}

func TestCountJobLines(t *testing.T) {
	t.Parallel()
	n, err := client.CountJobLines(strings.NewReader("{}\n\n  \n{}\n" + strings.Repeat("x", 1<<17) + "\n{}"))
	if err != nil || n != 4 {
		t.Fatalf("%d lines, %v; want 4", n, err)
	}
}
