package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
)

// authSetup is one NATS authentication mode: how the server enforces it,
// how the worker and the test's own client are configured for it, and a
// wrong secret the worker must be refused with.
type authSetup struct {
	server func(*server.Options)
	// sets and env configure the worker; secrets go through env or files,
	// never the command line.
	sets, env []string
	client    []nats.Option
	// wrongSets/wrongEnv replace sets/env for the refused run; wrongWant
	// are substrings of its error message (what failed, which file or key).
	wrongSets, wrongEnv []string
	wrongWant           []string
	// secrets must appear in no output of either run.
	secrets []string
}

func authModes(t *testing.T) map[string]func(t *testing.T) authSetup {
	return map[string]func(t *testing.T) authSetup{
		"tls": func(t *testing.T) authSetup {
			pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
			return authSetup{
				server:    pki.ServerTLS(t, false),
				sets:      []string{"nats.tls.ca=" + pki.CA},
				client:    []nats.Option{nats.RootCAs(pki.CA)},
				wrongSets: []string{"nats.tls.ca=" + other.CA},
				wrongWant: []string{"TLS CA file " + other.CA, "certificate signed by unknown authority"},
			}
		},
		"mtls": func(t *testing.T) authSetup {
			pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
			return authSetup{
				server: pki.ServerTLS(t, true),
				sets:   []string{"nats.tls.ca=" + pki.CA, "nats.tls.cert=" + pki.ClientCert, "nats.tls.key=" + pki.ClientKey},
				client: []nats.Option{nats.RootCAs(pki.CA), nats.ClientCert(pki.ClientCert, pki.ClientKey)},
				// A certificate the server's CA did not sign.
				wrongSets: []string{"nats.tls.ca=" + pki.CA, "nats.tls.cert=" + other.ClientCert, "nats.tls.key=" + other.ClientKey},
				wrongWant: []string{"TLS client certificate " + other.ClientCert},
				secrets:   []string{readFile(t, pki.ClientKey), readFile(t, other.ClientKey)},
			}
		},
		"token": func(t *testing.T) authSetup {
			token, wrong := "tok-"+secretWord(t), "tok-"+secretWord(t)
			return authSetup{
				server:    func(o *server.Options) { o.Authorization = token },
				sets:      []string{"nats.token_file=" + secretFile(t, token+"\n")},
				client:    []nats.Option{nats.Token(token)},
				wrongEnv:  []string{"WORKER_NATS_TOKEN=" + wrong},
				wrongWant: []string{"with token", "authorization violation"},
				secrets:   []string{token, wrong},
			}
		},
		"user-password": func(t *testing.T) authSetup {
			pw, wrong := "pw-"+secretWord(t), "pw-"+secretWord(t)
			return authSetup{
				server:    func(o *server.Options) { o.Users = []*server.User{{Username: "worker", Password: pw}} },
				sets:      []string{"nats.user=worker"},
				env:       []string{"WORKER_NATS_PASSWORD=" + pw},
				client:    []nats.Option{nats.UserInfo("worker", pw)},
				wrongSets: []string{"nats.user=worker"},
				wrongEnv:  []string{"WORKER_NATS_PASSWORD=" + wrong},
				wrongWant: []string{`user "worker" and password`, "authorization violation"},
				secrets:   []string{pw, wrong},
			}
		},
		"nkey": func(t *testing.T) authSetup {
			pub, seed := testenv.NKeyUser(t)
			_, wrongSeed := testenv.NKeyUser(t)
			opt, err := nats.NkeyOptionFromSeed(seed)
			if err != nil {
				t.Fatal(err)
			}
			return authSetup{
				server:    func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} },
				sets:      []string{"nats.nkey=" + seed},
				client:    []nats.Option{opt},
				wrongSets: []string{"nats.nkey=" + wrongSeed},
				wrongWant: []string{"nkey seed file " + wrongSeed, "authorization violation"},
				secrets:   []string{readFile(t, seed), readFile(t, wrongSeed)},
			}
		},
		"creds": func(t *testing.T) authSetup {
			op, stranger := testenv.NewOperator(t), testenv.NewOperator(t)
			creds := op.Creds(t, "worker", jwt.Permissions{})
			wrong := stranger.Creds(t, "worker", jwt.Permissions{})
			return authSetup{
				server:    op.Configure,
				sets:      []string{"nats.creds=" + creds},
				client:    []nats.Option{nats.UserCredentials(creds)},
				wrongSets: []string{"nats.creds=" + wrong},
				wrongWant: []string{"creds file " + wrong, "authorization violation"},
				secrets:   append(credsSecrets(t, creds), credsSecrets(t, wrong)...),
			}
		},
	}
}

// TestWorkerRunsUnderEveryNATSAuthMode runs `worker run` against a server
// that enforces each authentication mode: it connects, runs jobs, survives
// a restart of the server, and with a wrong secret exits 1 naming what
// failed. No output of either run (debug logs, /metrics, the error) holds
// a secret. The admin endpoint requires a token, which the outputs must
// not show either.
func TestWorkerRunsUnderEveryNATSAuthMode(t *testing.T) {
	t.Parallel()
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{procFn: {}})
	base := []string{"invoke.oci.config_file=" + creds.ConfigFile, "invoke.endpoints=" + procFn + "=" + emu.URL(),
		"nats.reconnect_wait=50ms", "worker.progress_interval=200ms"}
	for name, mode := range authModes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := mode(t)
			srv := testenv.StartSecureNATS(t, a.server)
			adminToken := "adm-" + secretWord(t)
			a.secrets = append(a.secrets, adminToken)
			admin := []string{"http.token_file=" + secretFile(t, adminToken), "http.pprof=true"}

			p := startWorker(t, srv.URL(), append(slices.Clone(a.env), "GOTRACEBACK=all"), append(slices.Concat(base, admin), a.sets...)...)
			nc, err := nats.Connect(srv.URL(), append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, a.client...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			publishEventually(t, js, "before", 5)
			testenv.Eventually(t, "results before the restart", func() bool { return countEventually(js, "INVOKE_RESULTS") == 5 })

			srv.Restart(t)
			publishEventually(t, js, "after", 5)
			testenv.Eventually(t, "results after the restart", func() bool { return countEventually(js, "INVOKE_RESULTS") == 10 })
			bearer := http.Header{"Authorization": {"Bearer " + adminToken}}
			if code, _ := p.get("/metrics", nil); code != http.StatusUnauthorized {
				t.Errorf("/metrics without the admin token: %d", code)
			}
			_, metrics := p.get("/metrics", bearer)
			if !strings.Contains(metrics, "invoke_worker_jobs_total") {
				t.Errorf("/metrics with the admin token:\n%s", tail(metrics, 500))
			}
			_, cmdline := p.get("/debug/pprof/cmdline", bearer)

			wrong := runWorkerToExit(t, srv.URL(), a.wrongEnv, append(slices.Clone(base), a.wrongSets...)...)
			if wrong.code != exitFailed {
				t.Fatalf("wrong secret: exit %d, want %d\n%s", wrong.code, exitFailed, wrong.out)
			}
			for _, w := range a.wrongWant {
				if !strings.Contains(strings.ToLower(wrong.out), strings.ToLower(w)) {
					t.Errorf("wrong secret: output does not say %q:\n%s", w, wrong.out)
				}
			}
			// A crash prints every goroutine's stack, as a panic does
			// (SIGQUIT makes the runtime do it): no secret in that either.
			if err := p.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
				t.Fatal(err)
			}
			<-p.done
			crash := p.logs()
			if !strings.Contains(crash, "goroutine ") {
				t.Errorf("no goroutine dump after SIGQUIT:\n%s", tail(crash, 500))
			}
			for _, s := range a.secrets {
				for what, out := range map[string]string{"logs and crash dump": crash, "metrics": metrics, "pprof cmdline": cmdline, "refused run": wrong.out} {
					if strings.Contains(out, s) {
						t.Errorf("%s contain a secret", what)
					}
				}
			}
		})
	}
}

// startWorker runs `worker run` at debug level (the most talkative) and
// waits until it is ready.
func startWorker(t *testing.T, url string, env []string, sets ...string) *proc {
	t.Helper()
	p := &proc{admin: freeAddr(t), done: make(chan struct{})}
	p.cmd = exec.Command(workerBin, workerArgs(url, append(sets, "http.listen="+p.admin))...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker output:\n%s", tail(p.logs(), 4000))
		}
	})
	testenv.Eventually(t, "worker ready", p.ready)
	return p
}

type exited struct {
	code int
	out  string
}

// runWorkerToExit runs `worker run` that is expected to fail at start-up.
func runWorkerToExit(t *testing.T, url string, env []string, sets ...string) exited {
	t.Helper()
	return runBinary(t, env, workerArgs(url, append(sets, "http.listen="))...)
}

func workerArgs(url string, sets []string) []string {
	args := []string{"run", "--nats", url, "--log-level", "debug"}
	for _, s := range sets {
		if strings.HasPrefix(s, "--") { // a flag, such as --config=FILE
			args = append(args, s)
			continue
		}
		args = append(args, "--set", s)
	}
	return args
}

// publishEventually publishes n jobs, retrying each until the server
// (perhaps restarting) stores it; Nats-Msg-Id makes a retry harmless.
func publishEventually(t *testing.T, js jetstream.JetStream, prefix string, n int) {
	t.Helper()
	for i := range n {
		msg := nats.NewMsg("invoke.jobs.auth")
		msg.Header.Set(job.HeaderFunctionID, procFn)
		msg.Header.Set(job.HeaderMsgID, fmt.Sprintf("%s-%d", prefix, i))
		msg.Data = []byte("{}")
		testenv.Eventually(t, "job published", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := js.PublishMsg(ctx, msg)
			return err == nil
		})
	}
}

// countEventually is the stream's message count, 0 while it cannot be read.
func countEventually(js jetstream.JetStream, stream string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

func (p *proc) get(path string, header http.Header) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.admin+path, nil)
	maps.Copy(req.Header, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// secretWord is a random word for a password or token.
func secretWord(t *testing.T) string {
	t.Helper()
	pub, _ := testenv.NKeyUser(t)
	return strings.ToLower(pub[1:21])
}

// secretFile writes a secret to a file readable by the owner only.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// credsSecrets are the lines of a creds file that are secret: the seed
// (the JWT is signed but not secret; it is checked too, as it identifies
// the user).
func credsSecrets(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(readFile(t, path), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "SU") || strings.HasPrefix(line, "ey") {
			out = append(out, line)
		}
	}
	if len(out) != 2 {
		t.Fatalf("creds file %s: found %d secret lines", filepath.Base(path), len(out))
	}
	return out
}
