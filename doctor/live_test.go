package doctor_test

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/doctor"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
)

// live is a configuration pointing at a fresh embedded NATS server with
// the worker's topology (state bucket included), signing with throwaway
// API-key credentials, and calling the emulator.
type live struct {
	cfg  config.Config
	nats *testenv.NATS
	emu  *emulator.Emulator
}

func startLive(t *testing.T, opts ...testenv.Option) live {
	t.Helper()
	n := testenv.StartNATS(t, queue.DefaultTopology(), opts...)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c := config.Default()
	if _, err := queue.EnsureStateStore(ctx, n.JS, c.Streams.State, c.Streams.StateMaxAge, c.Streams.Replicas); err != nil {
		t.Fatal(err)
	}
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{fn: {}})
	c.NATS.URL = n.Server.ClientURL()
	c.Invoke.OCI.ConfigFile = creds.ConfigFile
	c.Invoke.Endpoints = map[string]string{fn: emu.URL()}
	c.Invoke.ManagementEndpoint = emu.URL()
	c.Invoke.Timeout.Connect = 2 * time.Second
	return live{cfg: c, nats: n, emu: emu}
}

func runLive(t *testing.T, c config.Config, o doctor.Options) doctor.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	return doctor.Run(ctx, c, o)
}

func text(r doctor.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

func TestLiveCleanAgainstEmbeddedNATSAndEmulator(t *testing.T) {
	l := startLive(t)
	r := runLive(t, l.cfg, doctor.Options{})
	if r.Failed() {
		t.Fatalf("not clean:\n%s", text(r))
	}
	for _, check := range []string{"nats.connect", "nats.jetstream", "nats.max_payload", "stream.INVOKE_JOBS", "stream.INVOKE_RESULTS", "stream.INVOKE_DLQ",
		"bucket.INVOKE_ATTEMPTS", "bucket.INVOKE_JOB_BODIES", "bucket.INVOKE_RESULT_BODIES", "consumer", "oci.credentials", "oci.fingerprint", "oci.signature", "endpoint", "clock"} {
		find(t, r, check, doctor.OK)
	}
}

func TestLiveStreamThatDiffersIsNamedWithBothValues(t *testing.T) {
	l := startLive(t)
	ctx := context.Background()
	s, err := l.nats.JS.Stream(ctx, "INVOKE_RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	sc.MaxAge = time.Hour
	if _, err := l.nats.JS.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "stream.INVOKE_RESULTS", doctor.Warning)
	if !strings.Contains(f.What, "max age: ours 24h, server 1h") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveStreamWithOtherRetentionIsAnError(t *testing.T) {
	l := startLive(t)
	ctx := context.Background()
	if err := l.nats.JS.DeleteStream(ctx, "INVOKE_DLQ"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.nats.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "INVOKE_DLQ", Subjects: []string{"invoke.dlq.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "stream.INVOKE_DLQ", doctor.Error)
	if !strings.Contains(f.What, "retention: ours Limits, server WorkQueue") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveBucketThatDiffers(t *testing.T) {
	l := startLive(t)
	l.cfg.Streams.StateMaxAge = 48 * time.Hour
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "bucket.INVOKE_ATTEMPTS", doctor.Warning)
	if !strings.Contains(f.What, "ttl: ours 48h, server 24h") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveConsumerThatDiffersSaysTheServerWins(t *testing.T) {
	l := startLive(t)
	l.cfg.Consumer.AckWait = 3 * time.Minute
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "consumer", doctor.Warning)
	if !strings.Contains(f.What, "consumer.ack_wait: ours 3m, server 1m30s") || !strings.Contains(f.Why, "server's") {
		t.Errorf("finding = %+v", f)
	}
}

func TestLiveRouteStreamThatDoesNotExist(t *testing.T) {
	l := startLive(t)
	if _, err := l.nats.JS.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	l.cfg.Routes = []config.Route{
		{Name: "orders", Stream: "ORDERS", Functions: []string{fn}},
		{Name: "typo", Stream: "ORDRES", Functions: []string{fn}},
		{Name: "created", Stream: "CREATED", StreamSubjects: []string{"created.>"}, Functions: []string{fn}},
	}
	r := runLive(t, l.cfg, doctor.Options{})
	find(t, r, "route.orders", doctor.OK)
	find(t, r, "route.created", doctor.Info)
	if f := find(t, r, "route.typo", doctor.Error); !strings.Contains(f.What, "ORDRES does not exist") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveServerMaxPayloadBelowTheRequestLimit(t *testing.T) {
	l := startLive(t, testenv.MaxPayload(1<<20))
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "nats.max_payload", doctor.Warning)
	if !strings.Contains(f.What, "max_payload is 1MiB") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveNATSUnreachable(t *testing.T) {
	c := config.Default()
	c.NATS.URL = "nats://" + closedAddr(t)
	c.NATS.ConnectTimeout = 2 * time.Second
	c.Invoke.OCI.Auth = "none"
	r := runLive(t, c, doctor.Options{})
	find(t, r, "nats.connect", doctor.Error)

	// Without nats.url the worker starts its own server: nothing there yet
	// is not a problem, only a check skipped.
	c.NATS.URL = ""
	c.NATS.Embedded.Listen = closedAddr(t)
	find(t, runLive(t, c, doctor.Options{}), "nats.connect", doctor.Skipped)
}

// A configuration the worker refuses still gets its live checks, with
// default timeouts where its own are unusable.
func TestLiveChecksRunOnAConfigurationWithUnusableTimeouts(t *testing.T) {
	l := startLive(t)
	l.cfg.NATS.ConnectTimeout = 0
	l.cfg.Invoke.Timeout.Connect = -time.Second
	r := runLive(t, l.cfg, doctor.Options{})
	find(t, r, "config.valid", doctor.Error)
	find(t, r, "nats.connect", doctor.OK)
	find(t, r, "endpoint", doctor.OK)
}

func TestLiveJetStreamDisabled(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(testenv.Wait) {
		t.Fatal("nats-server not ready")
	}
	c := config.Default()
	c.NATS.URL = srv.ClientURL()
	c.Invoke.OCI.Auth = "none"
	find(t, runLive(t, c, doctor.Options{}), "nats.jetstream", doctor.Error)
}

func TestLiveCredentialsMissing(t *testing.T) {
	l := startLive(t)
	l.cfg.Invoke.OCI.ConfigFile = t.TempDir() + "/no-such-config"
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "oci.credentials", doctor.Error)
	if !strings.Contains(f.What, "no-such-config") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveKeyThatDoesNotMatchItsFingerprint(t *testing.T) {
	l := startLive(t)
	rewriteOCIConfig(t, l.cfg.Invoke.OCI.ConfigFile, `fingerprint=.*`, "fingerprint=00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff")
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "oci.fingerprint", doctor.Error)
	if !strings.Contains(f.What, "says 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff") {
		t.Errorf("what = %q", f.What)
	}
}

// rewriteOCIConfig replaces a line of the OCI config the test signs with.
func rewriteOCIConfig(t *testing.T, file, pattern, line string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, regexp.MustCompile(pattern).ReplaceAll(b, []byte(line)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The emulator verifies signatures as OCI does: a key id it does not
// know is refused with 401.
func TestLiveSignatureRefused(t *testing.T) {
	l := startLive(t)
	rewriteOCIConfig(t, l.cfg.Invoke.OCI.ConfigFile, `user=.*`, "user=ocid1.user.oc1..aaaaaaaaotheruser")
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "oci.signature", doctor.Error)
	if !strings.Contains(f.What, "refused the signature") || !strings.Contains(f.What, "401") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveListedEndpointThatIsNotTheFunctions(t *testing.T) {
	srv := tlsServer(t, http.NotFoundHandler())
	l := startLive(t)
	l.cfg.Invoke.Endpoints = map[string]string{fn: srv.URL}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	f := find(t, runLive(t, l.cfg, doctor.Options{RootCAs: roots}), "oci.signature", doctor.Warning)
	if !strings.Contains(f.What, "invoke.endpoints says "+srv.URL) {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveEndpointThatDoesNotResolve(t *testing.T) {
	l := startLive(t)
	l.cfg.Invoke.Endpoints = map[string]string{fn: "https://doctor-test.invalid"}
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "endpoint", doctor.Error)
	if !strings.Contains(f.What, "doctor-test.invalid does not resolve") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveEndpointThatRefusesConnections(t *testing.T) {
	l := startLive(t)
	l.cfg.Invoke.Endpoints = map[string]string{fn: "http://" + closedAddr(t)}
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "endpoint", doctor.Error)
	if !strings.Contains(f.What, "no connection to") {
		t.Errorf("what = %q", f.What)
	}
}

func TestLiveEndpointTLS(t *testing.T) {
	srv := tlsServer(t, http.NotFoundHandler())
	l := startLive(t)
	l.cfg.Invoke.Endpoints = map[string]string{fn: srv.URL}

	// The worker trusts the system roots only: a certificate from another
	// CA fails every invocation.
	f := find(t, runLive(t, l.cfg, doctor.Options{}), "endpoint", doctor.Error)
	if !strings.Contains(f.What, "TLS handshake") {
		t.Errorf("what = %q", f.What)
	}

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	r := runLive(t, l.cfg, doctor.Options{RootCAs: roots})
	if !strings.Contains(find(t, r, "endpoint", doctor.OK).What, "TLS verified") {
		t.Error("no TLS verified")
	}
	find(t, r, "clock", doctor.OK)

	// A certificate about to expire.
	soon := func() time.Time { return srv.Certificate().NotAfter.Add(-48 * time.Hour) }
	f = find(t, runLive(t, l.cfg, doctor.Options{RootCAs: roots, Now: soon}), "endpoint", doctor.Warning)
	if !strings.Contains(f.What, "expires") {
		t.Errorf("what = %q", f.What)
	}
}

// Behind a proxy the worker never dials the endpoint itself, so neither
// does the doctor: no DNS or TLS failure is reported for a host only the
// proxy can reach, and the clock is read through the proxy.
func TestLiveEndpointBehindAProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1) // a HEAD through an HTTP proxy arrives in absolute form
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	l := startLive(t)
	l.cfg.Invoke.Endpoints = map[string]string{fn: "http://only-the-proxy-knows.invalid"}
	l.cfg.Invoke.ManagementEndpoint = ""
	l.cfg.Invoke.OCI.Auth = "none"
	r := runLive(t, l.cfg, doctor.Options{Proxy: func(*http.Request) (*url.URL, error) { return proxyURL, nil }})
	f := find(t, r, "endpoint", doctor.Info)
	if !strings.Contains(f.What, "through the proxy "+proxy.URL) {
		t.Errorf("what = %q", f.What)
	}
	find(t, r, "clock", doctor.OK)
	if proxied.Load() == 0 {
		t.Error("the clock was not read through the proxy")
	}
}

func TestLiveClockSkew(t *testing.T) {
	for _, tc := range []struct {
		off time.Duration
		sev doctor.Severity
	}{{10 * time.Minute, doctor.Error}, {-2 * time.Minute, doctor.Warning}, {0, doctor.OK}} {
		srv := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Date", time.Now().Add(tc.off).UTC().Format(http.TimeFormat))
		}))
		l := startLive(t)
		l.cfg.Invoke.Endpoints = map[string]string{fn: srv.URL}
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		f := find(t, runLive(t, l.cfg, doctor.Options{RootCAs: roots}), "clock", tc.sev)
		if tc.off > 0 && !strings.Contains(f.What, "behind") {
			t.Errorf("what = %q, want behind", f.What)
		}
		srv.Close()
	}
}

func TestOfflineSkipsEveryLiveCheck(t *testing.T) {
	c := config.Default()
	c.NATS.URL = "nats://" + closedAddr(t)
	r := runLive(t, c, doctor.Options{Offline: true})
	find(t, r, "live", doctor.Skipped)
	for _, f := range r.Findings {
		if strings.HasPrefix(f.Check, "nats.connect") || f.Check == "oci.credentials" {
			t.Errorf("offline ran %s", f.Check)
		}
	}
	if r.Failed() {
		t.Errorf("offline run of the defaults failed:\n%s", text(r))
	}
}

// tlsServer is an httptest TLS server whose handshake failures (the
// untrusted-certificate case) are not logged.
func tlsServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
