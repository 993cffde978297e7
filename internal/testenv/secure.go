package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// SecureNATS is an embedded nats-server with JetStream whose options the
// test sets (authentication, TLS, permissions), so the server enforces
// what the worker is configured for. Restart keeps its port and store.
type SecureNATS struct {
	Server *server.Server

	configure  func(*server.Options)
	storeDir   string
	port       int
	violations *violationLog
}

// violationLog keeps the server's permission-violation log lines.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) record(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if strings.Contains(line, " Violation - ") {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

func (l *violationLog) Noticef(string, ...any)    {}
func (l *violationLog) Warnf(f string, v ...any)  { l.record(f, v...) }
func (l *violationLog) Fatalf(f string, v ...any) { l.record(f, v...) }
func (l *violationLog) Errorf(f string, v ...any) { l.record(f, v...) }
func (l *violationLog) Debugf(string, ...any)     {}
func (l *violationLog) Tracef(string, ...any)     {}

// Violations returns the permission violations the server logged so far
// and forgets them.
func (s *SecureNATS) Violations() []string {
	s.violations.mu.Lock()
	defer s.violations.mu.Unlock()
	v := s.violations.lines
	s.violations.lines = nil
	return v
}

// StartSecureNATS starts a server on a free loopback port with its store
// in a temp dir, after configure has set the options under test. configure
// runs again on every Restart (a memory account resolver, for one, starts
// empty each time).
func StartSecureNATS(t testing.TB, configure func(*server.Options)) *SecureNATS {
	t.Helper()
	s := &SecureNATS{configure: configure, storeDir: t.TempDir(), port: server.RANDOM_PORT, violations: &violationLog{}}
	s.start(t)
	s.port = s.Server.Addr().(*net.TCPAddr).Port
	return s
}

func (s *SecureNATS) start(t testing.TB) {
	t.Helper()
	opts := &server.Options{
		ServerName: "secure-test",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.storeDir,
		MaxPayload: 8 << 20,
		NoSigs:     true,
	}
	s.configure(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	srv.SetLoggerV2(s.violations, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(Wait) {
		srv.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	s.Server = srv
}

// URL is the server's client URL; it stays the same across restarts.
func (s *SecureNATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Restart stops the server and starts it again on the same port and store.
func (s *SecureNATS) Restart(t testing.TB) {
	t.Helper()
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
	s.start(t)
}

// PKI is a private certificate authority made for one test, with a server
// certificate for 127.0.0.1 and a client certificate, as PEM files with
// keys readable by the owner only.
type PKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	dir    string
}

// NewPKI generates a CA and the two certificates it signs.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{dir: t.TempDir()}
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "invoke-worker test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caKey = key
	p.CA = p.write(t, "ca.pem", "CERTIFICATE", der, 0o644)
	p.ServerCert, p.ServerKey = p.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = p.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// Issue signs a new certificate named name for 127.0.0.1 and localhost and
// returns its certificate and key files.
func (p *PKI) Issue(t testing.TB, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key := newECKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der, 0o644), p.write(t, name+"-key.pem", "PRIVATE KEY", keyDER, 0o600)
}

// ServerTLS is the server side: certificate from this CA, and with
// verify set, client certificates required and checked against the CA.
func (p *PKI) ServerTLS(t testing.TB, verify bool) func(*server.Options) {
	t.Helper()
	cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.ServerCert, KeyFile: p.ServerKey, CaFile: p.CA, Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) {
		o.TLSConfig = cfg.Clone()
		o.TLS, o.TLSVerify, o.TLSTimeout = true, verify, 5
	}
}

func (p *PKI) write(t testing.TB, name, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Operator is a decentralized-auth set-up made for one test: an operator,
// a system account and one account with JetStream, whose users get creds
// files. Configure trusts the operator and serves both account JWTs from a
// memory resolver.
type Operator struct {
	operator   *jwt.OperatorClaims
	accountKP  nkeys.KeyPair
	accountPub string
	jwts       map[string]string // account public key -> JWT
	sysPub     string
	dir        string
}

// NewOperator makes the operator and its accounts.
func NewOperator(t testing.TB) *Operator {
	t.Helper()
	opKP, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	opPub, _ := opKP.PublicKey()
	o := &Operator{operator: jwt.NewOperatorClaims(opPub), jwts: map[string]string{}, dir: t.TempDir()}
	o.operator.Name = "test-operator"
	if _, err := o.operator.Encode(opKP); err != nil {
		t.Fatal(err)
	}
	account := func(name string, jetstream bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if jetstream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(opKP)
		if err != nil {
			t.Fatal(err)
		}
		o.jwts[pub] = tok
		return kp, pub
	}
	_, o.sysPub = account("SYS", false)
	o.operator.SystemAccount = o.sysPub
	if _, err := o.operator.Encode(opKP); err != nil {
		t.Fatal(err)
	}
	o.accountKP, o.accountPub = account("APP", true)
	return o
}

// Configure trusts the operator and resolves its accounts from memory.
func (o *Operator) Configure(opts *server.Options) {
	r := &server.MemAccResolver{}
	for pub, tok := range o.jwts {
		_ = r.Store(pub, tok)
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{o.operator}
	opts.AccountResolver = r
	opts.SystemAccount = o.sysPub
}

// Creds writes a creds file for a new user of the JetStream account, with
// perms (zero: everything allowed), readable by the owner only.
func (o *Operator) Creds(t testing.TB, name string, perms jwt.Permissions) string {
	t.Helper()
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Name = name
	uc.IssuerAccount = ""
	uc.Permissions = perms
	tok, err := uc.Encode(o.accountKP)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.dir, name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// NKeyUser makes a user nkey and writes its seed to a file readable by the
// owner only; the server is told the public key.
func NKeyUser(t testing.TB) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ = kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, seedFile
}
