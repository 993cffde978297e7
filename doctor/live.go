package doctor

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/invoke-worker/worker/config"
)

// Options says how Run reaches the live system. The zero value checks
// everything with the system's resolver, roots and clock.
type Options struct {
	// Offline skips every check that needs the network.
	Offline bool
	// RootCAs replaces the system roots for the endpoints' TLS (the worker
	// uses the system roots; tests pass their servers' certificates).
	RootCAs *x509.CertPool
	// Resolver resolves endpoint host names. Default net.DefaultResolver.
	Resolver *net.Resolver
	// Now is the local clock compared with servers'. Default time.Now.
	Now func() time.Time
	// Proxy says which proxy reaches an endpoint, as the worker's client
	// does. Default http.ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
}

// Run checks c: Static, then, unless o.Offline, the live system. Secrets
// in c (nats.password, nats.token, invoke.oci.passphrase, credentials in
// nats.url) never appear in the report, even inside an error message a
// library returned.
func Run(ctx context.Context, c config.Config, o Options) Report {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	r := Static(c)
	// Live checks still run on a configuration Validate refuses (whether
	// NATS and the credentials work is worth knowing all the same), with
	// the defaults for timeouts it has no usable value of.
	d := config.Default()
	for _, t := range []struct{ v, def *time.Duration }{
		{&c.NATS.ConnectTimeout, &d.NATS.ConnectTimeout},
		{&c.Invoke.Timeout.Connect, &d.Invoke.Timeout.Connect},
		{&c.Invoke.Timeout.Read, &d.Invoke.Timeout.Read},
	} {
		if *t.v <= 0 {
			*t.v = *t.def
		}
	}
	if o.Offline {
		r.add(Finding{Check: "live", Severity: Skipped, What: "live checks skipped (--offline): NATS, streams, buckets, consumer, OCI credentials, endpoints, clock"})
	} else {
		r.add(checkNATS(ctx, c)...)
		creds := checkCredentials(ctx, c)
		r.add(creds.findings...)
		r.add(checkSignature(ctx, c, creds))
		eps := checkEndpoints(ctx, c, o, creds.region)
		r.add(eps.findings...)
		r.add(checkClock(ctx, c, o, eps.reachable))
	}
	r.scrub(secrets(c))
	return r
}

// secrets are the configured values that must never be shown.
func secrets(c config.Config) []string {
	out := []string{c.NATS.Password, c.NATS.Token, c.Invoke.OCI.Passphrase, c.HTTP.Token}
	for _, u := range natsServers(c.NATS.URL) {
		if u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		} else {
			out = append(out, u.User.Username()) // nats://TOKEN@host
		}
	}
	return out
}
