package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/invoke-worker/worker/config"
)

// Clock limits: OCI refuses a signature whose date is more than 5 minutes
// off its own clock; a minute off is worth fixing before it gets there.
const (
	clockSkewLimit = 5 * time.Minute
	clockSkewWarn  = time.Minute
	// certExpiryWarn: a certificate that expires sooner is worth a look.
	certExpiryWarn = 14 * 24 * time.Hour
)

type endpointsResult struct {
	findings []Finding
	// reachable are the endpoints that answered, https first, for the
	// clock check.
	reachable []string
}

// checkEndpoints resolves each configured endpoint and completes a TLS
// handshake with it (a TCP connection for http://). Without a management
// endpoint, the region's is checked too, when the credentials name a
// region: the worker looks functions up there.
func checkEndpoints(ctx context.Context, c config.Config, o Options, region string) endpointsResult {
	type target struct{ label, key, raw string }
	var targets []target
	for _, id := range sortedIDs(c.Invoke.Endpoints) {
		targets = append(targets, target{"endpoint of " + id, "invoke.endpoints", c.Invoke.Endpoints[id]})
	}
	switch {
	case c.Invoke.ManagementEndpoint != "":
		targets = append(targets, target{"management endpoint", "invoke.management_endpoint", c.Invoke.ManagementEndpoint})
	case region != "":
		targets = append(targets, target{"management endpoint (the region's)", "invoke.management_endpoint", "https://functions." + region + ".oci.oraclecloud.com"})
	}
	var res endpointsResult
	if len(targets) == 0 {
		res.findings = append(res.findings, Finding{Check: "endpoint", Severity: Skipped,
			What: "no endpoint to check: invoke.endpoints is empty and no region is known (invoke.management_endpoint empty, credentials not loaded or without a region)"})
		return res
	}
	var https, plain []string
	for _, t := range targets {
		f := checkEndpoint(ctx, c, o, t.label, t.key, t.raw)
		res.findings = append(res.findings, f)
		if f.Severity == OK || f.Severity == Warning || f.Severity == Info {
			if strings.HasPrefix(t.raw, "https://") {
				https = append(https, t.raw)
			} else {
				plain = append(plain, t.raw)
			}
		}
	}
	res.reachable = append(https, plain...)
	return res
}

func checkEndpoint(ctx context.Context, c config.Config, o Options, label, key, raw string) Finding {
	const check = "endpoint"
	fail := func(what, why, fix string) Finding {
		return Finding{Check: check, Severity: Error, Keys: []string{key}, What: label + ": " + what, Why: why, Fix: fix}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fail(fmt.Sprintf("%q is not a URL", raw), "no job for it can be sent", "write the endpoint as https://host")
	}
	// Through a proxy, the worker never resolves or dials the endpoint
	// itself: a direct attempt from here would prove nothing.
	if req, err := http.NewRequest(http.MethodHead, raw, nil); err == nil {
		if proxy, err := o.Proxy(req); err == nil && proxy != nil {
			return Finding{Check: check, Severity: Info,
				What: fmt.Sprintf("%s: %s is reached through the proxy %s (HTTPS_PROXY, HTTP_PROXY): DNS and TLS not checked from here; the clock check goes through it", label, u.Host, proxy.Redacted())}
		}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	timeout := c.Invoke.Timeout.Connect
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		addrs, err = o.Resolver.LookupHost(ctx, host)
		if err != nil {
			return fail(fmt.Sprintf("%s does not resolve: %v", host, err),
				"every invocation of its functions fails as a network error, retried until the jobs are dead-lettered as exhausted",
				"check the host name (the function's invokeEndpoint in the console, or `oci fn function get`) and this machine's DNS")
		}
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fail(fmt.Sprintf("no connection to %s (%s): %v", net.JoinHostPort(host, port), strings.Join(addrs, ", "), err),
			"every invocation of its functions fails as a network error, retried until the jobs are dead-lettered as exhausted",
			"check egress from the worker's network (security lists, NAT or service gateway, proxies) to "+host+":"+port)
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return ok(check, "%s: %s resolves and accepts connections (plain http)", label, u.Host)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail(fmt.Sprintf("TLS handshake with %s failed: %v", u.Host, err),
			"the worker verifies the server's certificate against the system roots: every invocation fails",
			"check the host name matches the certificate, that no proxy intercepts TLS, and that the system's CA certificates are installed (ca-certificates)")
	}
	cert := tc.ConnectionState().PeerCertificates[0]
	left := cert.NotAfter.Sub(o.Now())
	if left < certExpiryWarn {
		return Finding{Check: check, Severity: Warning, Keys: []string{key},
			What: fmt.Sprintf("%s: %s's certificate expires %s (in %s)", label, u.Host, cert.NotAfter.UTC().Format(time.RFC3339), dur(left.Round(time.Hour))),
			Why:  "once it expires every TLS handshake fails, and every invocation with it",
			Fix:  "renew the certificate, or confirm its owner rotates it before then"}
	}
	return ok(check, "%s: %s resolves (%s), TLS verified (certificate valid until %s)", label, u.Host, strings.Join(addrs, ", "), cert.NotAfter.UTC().Format("2006-01-02"))
}

// checkClock compares the local clock with the Date header of the first
// endpoint that answers: OCI rejects request signatures whose date is
// more than 5 minutes off its own.
func checkClock(ctx context.Context, c config.Config, o Options, reachable []string) Finding {
	const check = "clock"
	if len(reachable) == 0 {
		return Finding{Check: check, Severity: Skipped, What: "no reachable endpoint to compare the local clock with"}
	}
	client := &http.Client{
		Timeout:   c.Invoke.Timeout.Connect + c.Invoke.Timeout.Read,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}, Proxy: o.Proxy},
		// The Date of the first answer is all that is wanted.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	var lastErr error
	for _, raw := range reachable {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, raw, nil)
		if err != nil {
			lastErr = err
			continue
		}
		before := o.Now()
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		after := o.Now()
		date, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			lastErr = fmt.Errorf("%s sent no usable Date header", req.URL.Host)
			continue
		}
		// Date is truncated to the second, so the server's time was half a
		// second later on average; the request's midpoint is the best local
		// estimate of when it was written.
		local := before.Add(after.Sub(before) / 2)
		skew := local.Sub(date.Add(500 * time.Millisecond))
		abs := max(skew, -skew)
		what := fmt.Sprintf("the local clock is %s %s %s's (Date: %s)", dur(abs.Round(time.Second)), aheadBehind(skew), req.URL.Host, date.UTC().Format(time.RFC3339))
		switch {
		case abs > clockSkewLimit:
			return Finding{Check: check, Severity: Error, What: what,
				Why: "OCI rejects a request signature whose date is more than 5 minutes off (401): every invocation would fail",
				Fix: "synchronise this machine's clock (chrony or systemd-timesyncd with an NTP source; OCI instances have 169.254.169.254)"}
		case abs > clockSkewWarn:
			return Finding{Check: check, Severity: Warning, What: what,
				Why: "OCI rejects signatures more than 5 minutes off: a clock drifting this far is on its way there",
				Fix: "synchronise this machine's clock (chrony or systemd-timesyncd with an NTP source)"}
		}
		return ok(check, "%s", what)
	}
	return Finding{Check: check, Severity: Skipped, What: fmt.Sprintf("no endpoint answered with a Date to compare the clock with: %v", lastErr)}
}

func aheadBehind(skew time.Duration) string {
	if skew < 0 {
		return "behind"
	}
	return "ahead of"
}
