package doctor

import (
	"context"
	"crypto/md5"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/invoke"
)

// metadataAddr is the OCI instance metadata service, where instance
// principals get their certificates.
const metadataAddr = "169.254.169.254:80"

type credsResult struct {
	findings []Finding
	// provider signs requests: nil when nothing loaded or for auth none.
	provider common.ConfigurationProvider
	// region is the credentials' region, when they name one: the
	// management endpoint the worker uses for functions not listed.
	region string
}

// checkCredentials loads the signing credentials the way the worker does
// (invoke.NewOCICredentials, the OCI SDK's providers) and, for an API key,
// checks the key against the fingerprint the OCI config names.
func checkCredentials(ctx context.Context, c config.Config) credsResult {
	const check = "oci.credentials"
	a := c.Invoke.OCI
	switch a.Auth {
	case invoke.AuthNone:
		return credsResult{findings: []Finding{ok(check, "invoke.oci.auth none: nothing to load")}}
	case invoke.AuthInstancePrincipal:
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", metadataAddr)
		if err != nil {
			return credsResult{findings: []Finding{{Check: check, Severity: Skipped,
				What: "instance principal: the instance metadata service (" + metadataAddr + ") is not reachable from here; run the doctor on an OCI instance to check these credentials"}}}
		}
		conn.Close()
	case invoke.AuthResourcePrincipal:
		if os.Getenv("OCI_RESOURCE_PRINCIPAL_VERSION") == "" {
			return credsResult{findings: []Finding{{Check: check, Severity: Skipped,
				What: "resource principal: OCI_RESOURCE_PRINCIPAL_VERSION is not set here; run the doctor where the worker runs to check these credentials"}}}
		}
	case invoke.AuthOKEWorkloadIdentity:
		if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return credsResult{findings: []Finding{{Check: check, Severity: Skipped,
				What: "OKE workload identity: not in a Kubernetes pod here; run the doctor in the worker's pod to check these credentials"}}}
		}
	}
	_, cp, err := invoke.NewOCICredentials(invoke.OCIAuth{Mode: a.Auth, ConfigFile: a.ConfigFile, Profile: a.Profile, Passphrase: a.Passphrase})
	if err != nil {
		return credsResult{findings: []Finding{{Check: check, Severity: Error, Keys: []string{"invoke.oci.auth", "invoke.oci.config_file", "invoke.oci.profile"},
			What: err.Error(),
			Why:  "the worker loads its credentials at start-up and refuses to start without them",
			Fix:  credentialsFix(a.Auth)}}}
	}
	res := credsResult{provider: cp}
	if cp != nil {
		res.region, _ = cp.Region()
	}
	if a.Auth != invoke.AuthAPIKey && a.Auth != "" {
		res.findings = append(res.findings, ok(check, "%s credentials loaded (region %s)", a.Auth, orNone(res.region)))
		return res
	}
	key, err := cp.PrivateRSAKey()
	if err != nil {
		res.findings = append(res.findings, Finding{Check: check, Severity: Error, Keys: []string{"invoke.oci.config_file"},
			What: "the API key does not load: " + err.Error(), Why: "every request would go unsigned", Fix: credentialsFix(a.Auth)})
		return res
	}
	want, err := cp.KeyFingerprint()
	if err != nil {
		res.findings = append(res.findings, Finding{Check: check, Severity: Error, Keys: []string{"invoke.oci.config_file"},
			What: "the OCI config names no fingerprint: " + err.Error(), Why: "the key id of every signature includes it", Fix: "add fingerprint= to the profile (the key's, as the console shows it)"})
		return res
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		res.findings = append(res.findings, Finding{Check: check, Severity: Error, What: "the API key's public half: " + err.Error()})
		return res
	}
	got := fingerprint(der)
	if !strings.EqualFold(strings.TrimSpace(want), got) {
		res.provider = nil // a signature with it is refused: checkSignature would say it again
		res.findings = append(res.findings, Finding{Check: "oci.fingerprint", Severity: Error, Keys: []string{"invoke.oci.config_file", "invoke.oci.profile"},
			What: fmt.Sprintf("the private key's fingerprint is %s, the OCI config (profile %s) says %s", got, a.Profile, want),
			Why:  "OCI looks the public key up by the configured fingerprint and cannot verify signatures made with another key: every invocation fails with 401 NotAuthenticated and is dead-lettered as permanent",
			Fix:  "point key_file at the key whose public half is uploaded with that fingerprint, or set fingerprint= to " + got + " (and upload that key's public half)"})
		return res
	}
	res.findings = append(res.findings, ok(check, "API key loaded from %s, profile %s (region %s)", a.ConfigFile, a.Profile, orNone(res.region)),
		ok("oci.fingerprint", "the private key matches the configured fingerprint %s", got))
	return res
}

func credentialsFix(mode string) string {
	switch mode {
	case invoke.AuthInstancePrincipal:
		return "put the instance in a dynamic group with a policy that allows it to use fn-invocation"
	case invoke.AuthResourcePrincipal, invoke.AuthOKEWorkloadIdentity:
		return "check the workload's identity setup and its IAM policy"
	}
	return "check invoke.oci.config_file and invoke.oci.profile (user, tenancy, region, fingerprint, key_file), and the key's passphrase (invoke.oci.passphrase or pass_phrase)"
}

// fingerprint is OCI's key fingerprint: MD5 of the DER public key, as
// colon-separated hex.
func fingerprint(der []byte) string {
	sum := md5.Sum(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

// checkSignature looks one configured function up with GetFunction, signed
// with the loaded credentials, as the worker does for functions not in
// invoke.endpoints: the service refusing the signature (401) is what every
// invocation would meet. A listed endpoint that differs from the one
// GetFunction names is worth knowing too.
func checkSignature(ctx context.Context, c config.Config, creds credsResult) Finding {
	const check = "oci.signature"
	if creds.provider == nil {
		return Finding{Check: check, Severity: Skipped, What: "no credentials to sign a request with"}
	}
	id, listed := firstFunction(c)
	if id == "" {
		return Finding{Check: check, Severity: Skipped, What: "no function in invoke.endpoints or routes to look up with GetFunction"}
	}
	mgmt := c.Invoke.ManagementEndpoint
	if mgmt == "" && creds.region == "" {
		return Finding{Check: check, Severity: Skipped, What: "no management endpoint: invoke.management_endpoint is empty and the credentials name no region"}
	}
	resolver, err := invoke.NewFunctionsResolver(invoke.ResolverConfig{Provider: creds.provider, ManagementEndpoint: mgmt, NotFoundTTL: -1})
	if err != nil {
		return Finding{Check: check, Severity: Error, What: err.Error(), Why: "the worker builds the same client at start-up", Fix: credentialsFix(c.Invoke.OCI.Auth)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Invoke.Timeout.Connect+c.Invoke.Timeout.Read)
	defer cancel()
	ep, err := resolver.Endpoint(ctx, id)
	var ie *invoke.Error
	switch {
	case err == nil && listed != "" && strings.TrimSuffix(listed, "/") != strings.TrimSuffix(ep, "/"):
		return Finding{Check: check, Severity: Warning, Keys: []string{"invoke.endpoints"},
			What: fmt.Sprintf("GetFunction of %s accepted the signature and names the invoke endpoint %s, but invoke.endpoints says %s", id, ep, listed),
			Why:  "jobs for it go to the listed endpoint, which is not the function's",
			Fix:  fmt.Sprintf("set invoke.endpoints for %s to %s, or remove it to use GetFunction's", id, ep)}
	case err == nil:
		return ok(check, "GetFunction of %s, signed with these credentials, was accepted (invoke endpoint %s)", id, ep)
	case errors.As(err, &ie) && ie.Status == 401:
		return Finding{Check: check, Severity: Error, Keys: []string{"invoke.oci.auth", "invoke.oci.config_file", "invoke.oci.profile"},
			What: fmt.Sprintf("the Functions service refused the signature of GetFunction %s: 401 %s", id, ie.Code),
			Why:  "every invocation signed with these credentials is refused the same way, and dead-lettered as permanent",
			Fix:  "check the user and tenancy OCIDs and the fingerprint in the OCI config, that the key's public half is uploaded to that user, and the clock"}
	case errors.As(err, &ie) && (ie.Status == 403 || ie.Status == 404):
		f := Finding{Check: check, Severity: Warning, Keys: []string{"invoke.endpoints"},
			What: fmt.Sprintf("the signature was accepted, but GetFunction %s answered %d %s: the function does not exist or these credentials may not read it", id, ie.Status, ie.Code),
			Why:  "jobs for a function that is not in invoke.endpoints are dead-lettered as permanent when GetFunction cannot read it",
			Fix:  "check the OCID, or allow the principal to read functions (allow ... to read fn-function in compartment ...), or list its endpoint in invoke.endpoints"}
		if listed != "" {
			f.Severity, f.Keys, f.Why, f.Fix = Info, nil, "not needed while its endpoint is listed in invoke.endpoints", ""
		}
		return f
	}
	return Finding{Check: check, Severity: Warning, Keys: []string{"invoke.management_endpoint"},
		What: fmt.Sprintf("GetFunction %s failed: %v", id, err),
		Why:  "functions not listed in invoke.endpoints are looked up this way: their jobs would be retried as network errors",
		Fix:  "check the management endpoint's reachability from here (see the endpoint checks)"}
}

// firstFunction is the first function of invoke.endpoints (with its listed
// endpoint), else of the routes.
func firstFunction(c config.Config) (id, listed string) {
	if ids := sortedIDs(c.Invoke.Endpoints); len(ids) > 0 {
		return ids[0], c.Invoke.Endpoints[ids[0]]
	}
	for _, r := range c.Routes {
		if len(r.Functions) > 0 {
			return r.Functions[0], ""
		}
	}
	return "", ""
}
