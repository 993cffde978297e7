package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestReadmeServerSnippetLoads: the server configuration the README's
// "Securing a deployment" gives (users, each with a role of
// configs/nats-permissions.conf) is what nats-server itself accepts, not
// only what the permissions test builds in code: it is run through the
// server's own config parser, with the role file beside it (the roles no
// user refers to deleted, as the README says to: nats-server refuses a
// variable nothing refers to) and the passwords from the environment, as
// an operator would.
func TestReadmeServerSnippetLoads(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, block := range strings.Split(string(readme), "```")[1:] {
		if strings.Contains(block, `include "nats-permissions.conf"`) {
			snippet = block[strings.Index(block, "\n")+1:]
			break
		}
	}
	if snippet == "" {
		t.Fatal(`README: no code block with include "nats-permissions.conf"`)
	}
	roles, err := os.ReadFile(filepath.Join("..", "..", "configs", "nats-permissions.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nats-permissions.conf"), usedRoles(string(roles), snippet), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte(snippet), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"WORKER_PASSWORD", "ALICE_PASSWORD", "OPS_PASSWORD"} {
		t.Setenv(v, "pw-"+strings.ToLower(v))
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the README's snippet: %v", err)
	}
	if len(opts.Users) != 3 {
		t.Fatalf("%d users, want 3", len(opts.Users))
	}
	for _, u := range opts.Users {
		if u.Permissions == nil || u.Permissions.Publish == nil || len(u.Permissions.Publish.Allow) == 0 {
			t.Errorf("user %s has no publish permissions from its role", u.Username)
		}
		if !strings.HasPrefix(u.Password, "pw-") {
			t.Errorf("user %s: password not taken from the environment", u.Username)
		}
	}
}

// usedRoles is the role file with the roles (NAME = { ... } at the start
// of a line, closed by a } at the start of a line) that snippet does not
// refer to ($NAME) deleted.
func usedRoles(roles, snippet string) []byte {
	var out []string
	skipping := false
	for _, line := range strings.Split(roles, "\n") {
		if name, _, ok := strings.Cut(line, " = {"); ok && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			skipping = !strings.Contains(snippet, "$"+name+" ") && !strings.Contains(snippet, "$"+name+"}")
		}
		if !skipping {
			out = append(out, line)
		}
		if skipping && line == "}" {
			skipping = false
		}
	}
	return []byte(strings.Join(out, "\n"))
}
