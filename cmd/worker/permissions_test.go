package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
)

const (
	permsFailFn  = "ocid1.fnfunc.oc1.phx.aaaaaaaapermsfail"
	permsRetryFn = "ocid1.fnfunc.oc1.phx.aaaaaaaapermsretry"
)

// rolePermissions reads the roles of configs/nats-permissions.conf, the
// snippets the README tells operators to use, as the server parses them.
func rolePermissions(t *testing.T) map[string]*server.Permissions {
	t.Helper()
	vars, err := conf.ParseFile("../../configs/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	list := func(v any) []string {
		var out []string
		if m, ok := v.(map[string]any); ok {
			for _, s := range m["allow"].([]any) {
				out = append(out, s.(string))
			}
		}
		return out
	}
	roles := map[string]*server.Permissions{}
	for name, v := range vars {
		m := v.(map[string]any)
		p := &server.Permissions{}
		if pub := list(m["publish"]); pub != nil {
			p.Publish = &server.SubjectPermission{Allow: pub}
		}
		if sub := list(m["subscribe"]); sub != nil {
			p.Subscribe = &server.SubjectPermission{Allow: sub}
		}
		roles[name] = p
	}
	return roles
}

// merge joins roles, as an operator merges the lists of a user's roles;
// rename copies a publisher's role for another publisher.
func merge(roles ...*server.Permissions) *server.Permissions {
	out := &server.Permissions{Publish: &server.SubjectPermission{}, Subscribe: &server.SubjectPermission{}}
	for _, r := range roles {
		if r.Publish != nil {
			out.Publish.Allow = append(out.Publish.Allow, r.Publish.Allow...)
		}
		if r.Subscribe != nil {
			out.Subscribe.Allow = append(out.Subscribe.Allow, r.Subscribe.Allow...)
		}
	}
	return out
}

func rename(p *server.Permissions, from, to string) *server.Permissions {
	out := merge(p)
	for _, l := range [][]string{out.Publish.Allow, out.Subscribe.Allow} {
		for i, s := range l {
			l[i] = strings.ReplaceAll(s, from, to)
		}
	}
	return out
}

// TestEveryRoleRunsWithExactlyItsDocumentedPermissions runs a worker, a
// fan-out route, publishers and an operator, each as a NATS user with
// exactly its permissions from configs/nats-permissions.conf, against a
// server that enforces them: everything works and the server logs no
// violation. A publisher cannot read stored results, other publishers'
// replies, or publish into the results or dead-letter streams; one given
// the results reader's permissions can. A worker without stream
// management (streams.manage: false) says what is missing.
func TestEveryRoleRunsWithExactlyItsDocumentedPermissions(t *testing.T) {
	t.Parallel()
	roles := rolePermissions(t)
	worker := merge(roles["INVOKE_WORKER"], roles["INVOKE_ROUTE_ORDERS"])
	users := map[string]*server.Permissions{
		"admin":   nil, // the test's own set-up and checks
		"manager": merge(worker, roles["INVOKE_STREAM_MANAGER"]),
		"worker":  worker,
		"alice":   roles["INVOKE_PUBLISHER_ALICE"],
		"bob":     rename(roles["INVOKE_PUBLISHER_ALICE"], "alice", "bob"),
		"carol":   merge(rename(roles["INVOKE_PUBLISHER_ALICE"], "alice", "carol"), roles["INVOKE_RESULTS_READER"]),
		"ops":     roles["INVOKE_OPERATOR"],
	}
	password := map[string]string{}
	for u := range users {
		password[u] = "pw-" + secretWord(t)
	}
	srv := testenv.StartSecureNATS(t, func(o *server.Options) {
		o.MaxPayload = 256 << 10 // bodies of 300 KiB go through the object stores
		o.Users = nil
		for u, p := range users {
			o.Users = append(o.Users, &server.User{Username: u, Password: password[u], Permissions: p})
		}
	})
	connect := func(user string) *nats.Conn {
		t.Helper()
		nc, err := nats.Connect(srv.URL(), nats.UserInfo(user, password[user]), nats.CustomInboxPrefix("_INBOX_"+user),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // violations are checked on the server
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	admin, err := jetstream.New(connect("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	noViolations := func(when string) {
		t.Helper()
		if v := srv.Violations(); len(v) > 0 {
			t.Fatalf("%s: the server logged permission violations:\n%s", when, strings.Join(v, "\n"))
		}
	}

	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{procFn: {}, permsFailFn: {Status: 400}, permsRetryFn: {FailFirst: 1, FailStatus: 503}})
	cfgFile := filepath.Join(t.TempDir(), "worker.yaml")
	routes := "routes:\n  - name: orders\n    stream: ORDERS\n    functions: [" + procFn + "]\n"
	if err := os.WriteFile(cfgFile, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each user replies on its role's inbox prefix.
	as := func(user string, sets ...string) (env, all []string) {
		inbox := "_INBOX_" + user
		if user == "manager" {
			inbox = "_INBOX_worker"
		}
		return []string{"WORKER_NATS_PASSWORD=" + password[user]}, append([]string{"nats.user=" + user, "nats.inbox_prefix=" + inbox}, sets...)
	}
	workerSets := []string{"invoke.oci.config_file=" + creds.ConfigFile,
		"invoke.endpoints=" + procFn + "=" + emu.URL() + "," + permsFailFn + "=" + emu.URL() + "," + permsRetryFn + "=" + emu.URL(),
		"worker.progress_interval=200ms", "retry.initial_interval=50ms"}

	// A worker that may not manage streams says what is missing.
	env, sets := as("worker", append(slices.Clone(workerSets), "streams.manage=false")...)
	refused := runBinary(t, env, workerArgs(srv.URL(), append(sets, "--config="+cfgFile, "http.listen="))...)
	for _, want := range []string{"streams.manage is false", "stream INVOKE_JOBS", "stream INVOKE_DLQ", "object store INVOKE_JOB_BODIES", "key-value bucket INVOKE_ATTEMPTS"} {
		if refused.code != exitFailed || !strings.Contains(refused.out, want) {
			t.Fatalf("worker without streams on a bare server: exit %d, want 1 and %q:\n%s", refused.code, want, refused.out)
		}
	}
	noViolations("worker without streams")

	// The manager provisions, then stops; the worker runs with no
	// management permission.
	env, sets = as("manager", workerSets...)
	mgr := startWorker(t, srv.URL(), env, append([]string{"--config=" + cfgFile}, sets...)...)
	_ = mgr.cmd.Process.Signal(syscall.SIGTERM)
	if code := mgr.wait(t); code != 0 {
		t.Fatalf("manager exit %d", code)
	}
	noViolations("provisioning")
	env, sets = as("worker", append(slices.Clone(workerSets), "streams.manage=false")...)
	startWorker(t, srv.URL(), env, append([]string{"--config=" + cfgFile}, sets...)...)
	noViolations("worker start-up")

	// alice enqueues with `worker enqueue`: a small job, a large one and
	// one that fails once and waits to be retried, answered on her reply
	// subject, and one that is dead-lettered.
	aliceNC := connect("alice")
	replies, err := aliceNC.SubscribeSync("invoke.replies.alice.>")
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 300<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	env, sets = as("alice")
	for _, args := range [][]string{
		{"--function", procFn, "--subject", "invoke.jobs.alice.small", "--id", "small", "--body", "{}", "--header", "Invoke-Reply-To=invoke.replies.alice.small"},
		{"--function", procFn, "--subject", "invoke.jobs.alice.big", "--id", "big", "--file", big, "--header", "Invoke-Reply-To=invoke.replies.alice.big"},
		{"--function", permsRetryFn, "--subject", "invoke.jobs.alice.retry", "--id", "retry", "--body", "{}", "--header", "Invoke-Reply-To=invoke.replies.alice.retry"},
		{"--function", permsFailFn, "--subject", "invoke.jobs.alice.fail", "--id", "fail", "--body", "{}"},
	} {
		if r := runBinary(t, env, append(cliArgs(srv.URL(), "enqueue", sets), args...)...); r.code != 0 {
			t.Fatalf("worker enqueue %v: exit %d\n%s", args, r.code, r.out)
		}
	}
	for range 3 {
		if _, err := replies.NextMsg(testenv.Wait); err != nil {
			t.Fatalf("alice's replies: %v", err)
		}
	}
	testenv.Eventually(t, "the failing job dead-lettered", func() bool { return countEventually(admin, "INVOKE_DLQ") == 1 })

	// The route turns an event into a job.
	if _, err := admin.Publish(ctx, "orders.new", []byte(`{"order":1}`)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the route's job answered", func() bool { return countEventually(admin, "INVOKE_RESULTS") == 4 })
	noViolations("running jobs")

	// What alice may not do.
	aliceJS, err := jetstream.New(aliceNC)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"invoke.results.forged", "invoke.dlq.permanent.forged", "invoke.jobs.bob.x", "invoke.wait.1"} {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := aliceJS.Publish(pctx, subject, []byte("forged"))
		cancel()
		if err == nil {
			t.Errorf("alice published to %s", subject)
		}
	}
	results, err := aliceJS.Stream(ctx, "INVOKE_RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := results.GetLastMsgForSubject(gctx, "invoke.results.small"); err == nil {
		t.Error("alice read a stored result")
	}
	gcancel()
	if _, err := aliceNC.SubscribeSync("invoke.replies.bob.>"); err == nil {
		if err := aliceNC.Flush(); err != nil || !errors.Is(aliceNC.LastError(), nats.ErrPermissionViolation) {
			t.Errorf("alice subscribed to bob's replies: %v", aliceNC.LastError())
		}
	}
	if _, err := aliceNC.SubscribeSync("_INBOX_worker.>"); err == nil {
		_ = aliceNC.Flush()
	}
	if v := srv.Violations(); len(v) < 7 {
		t.Errorf("alice's forbidden acts: %d violations logged, want 7 or more:\n%s", len(v), strings.Join(v, "\n"))
	}
	if n := countEventually(admin, "INVOKE_RESULTS"); n != 4 {
		t.Errorf("results stream holds %d messages after alice's forgeries, want 4", n)
	}

	// carol, a publisher allowed to read results, invokes and waits.
	carol, err := client.New(ctx, connect("carol"), client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Its body and result are too large for a message: both go through
	// the object stores.
	large := []byte(strings.Repeat("y", 300<<10))
	if o, err := carol.Invoke(ctx, client.Job{FunctionID: procFn, Subject: "invoke.jobs.carol.x", Body: large}); err != nil || len(o.Body) != len(large) {
		t.Fatalf("carol: %v, result of %d bytes", err, len(o.Body))
	}
	noViolations("the results reader")

	// The operator lists, replays and purges the dead letters.
	env, sets = as("ops")
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "stats"}, {"dlq", "show", "1"}, {"dlq", "replay", "--all"}} {
		if r := runBinary(t, env, append(cliArgs(srv.URL(), args[0], sets), args[1:]...)...); r.code != 0 {
			t.Fatalf("worker %v: exit %d\n%s\nviolations: %q", args, r.code, r.out, srv.Violations())
		}
	}
	testenv.Eventually(t, "the replayed job dead-lettered again", func() bool { return countEventually(admin, "INVOKE_DLQ") == 1 })
	if r := runBinary(t, env, append(cliArgs(srv.URL(), "dlq", sets), "purge", "--all", "--yes")...); r.code != 0 {
		t.Fatalf("worker dlq purge: exit %d\n%s\nviolations: %q", r.code, r.out, srv.Violations())
	}
	if n := countEventually(admin, "INVOKE_DLQ"); n != 0 {
		t.Errorf("dead letters after purge: %d", n)
	}
	noViolations("the operator")
}

// TestReadmeTablesEveryPermissionsRole keeps the README's permissions
// table and configs/nats-permissions.conf together.
func TestReadmeTablesEveryPermissionsRole(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Securing a deployment")
	section, _, _ = strings.Cut(section, "\n## ")
	for role := range rolePermissions(t) {
		if !strings.Contains(section, "`"+role+"`") {
			t.Errorf("README, Securing a deployment: no row for %s of configs/nats-permissions.conf", role)
		}
	}
}

// cliArgs is a command line for a short-lived command as user settings.
func cliArgs(url, command string, sets []string) []string {
	args := []string{command, "--nats", url}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// runCLI runs the worker binary to its exit.
func runBinary(t *testing.T, env []string, args ...string) exited {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exited{ee.ExitCode(), string(out)}
	}
	if err != nil {
		t.Fatalf("run worker: %v\n%s", err, out)
	}
	return exited{0, string(out)}
}
