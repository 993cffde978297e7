package invoke

import (
	"cmp"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"
)

// Authentication modes of OCIAuth.Mode.
const (
	AuthAPIKey              = "api_key"
	AuthInstancePrincipal   = "instance_principal"
	AuthResourcePrincipal   = "resource_principal"
	AuthOKEWorkloadIdentity = "oke_workload_identity"
	AuthNone                = "none"
)

// Defaults of OCIAuth: where the OCI CLI and SDKs look for an API key.
const (
	OCIConfigFileDefault = "~/.oci/config"
	OCIProfileDefault    = "DEFAULT"
)

// OCIAuth selects where signing credentials come from.
type OCIAuth struct {
	// Mode is one of the Auth* constants. Defaults to api_key.
	Mode string
	// ConfigFile and Profile locate the API key for api_key. Default
	// OCIConfigFileDefault and OCIProfileDefault.
	ConfigFile string
	Profile    string
	// Passphrase unlocks an encrypted key file; empty uses the file's
	// pass_phrase, if any. It never appears in errors or logs.
	Passphrase string
}

// ErrCredentials wraps every failure to load signing credentials.
var ErrCredentials = errors.New("OCI credentials unusable")

// NewOCISigner loads credentials and returns a signer for invoke requests,
// or nil for AuthNone. It fails fast: the key is loaded and parsed here,
// not on the first job.
func NewOCISigner(a OCIAuth) (Signer, error) {
	s, _, err := NewOCICredentials(a)
	return s, err
}

// NewOCICredentials is NewOCISigner that also returns the configuration
// provider, for the management API (GetFunction). Both are nil for
// AuthNone.
func NewOCICredentials(a OCIAuth) (Signer, common.ConfigurationProvider, error) {
	var kp common.KeyProvider
	var cp common.ConfigurationProvider
	switch a.Mode {
	case AuthNone:
		return nil, nil, nil
	case "", AuthAPIKey:
		path := expandHome(cmp.Or(a.ConfigFile, OCIConfigFileDefault))
		profile := cmp.Or(a.Profile, OCIProfileDefault)
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("%w: OCI config file %s: %w", ErrCredentials, path, err)
		}
		p, err := common.ConfigurationProviderFromFileWithProfile(path, profile, a.Passphrase)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: OCI config file %s, profile %s: %w", ErrCredentials, path, profile, err)
		}
		cached := &cachedKeyProvider{src: p, ttl: 5 * time.Minute}
		if _, err := cached.PrivateRSAKey(); err != nil {
			return nil, nil, fmt.Errorf("%w: OCI config file %s, profile %s: %w", ErrCredentials, path, profile, err)
		}
		kp, cp = cached, p
	case AuthInstancePrincipal:
		p, err := auth.InstancePrincipalConfigurationProvider()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: instance principal: %w", ErrCredentials, err)
		}
		kp, cp = p, p
	case AuthResourcePrincipal:
		p, err := auth.ResourcePrincipalConfigurationProvider()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: resource principal: %w", ErrCredentials, err)
		}
		kp, cp = p, p
	case AuthOKEWorkloadIdentity:
		p, err := auth.OkeWorkloadIdentityConfigurationProvider()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: OKE workload identity: %w", ErrCredentials, err)
		}
		kp, cp = p, p
	default:
		return nil, nil, fmt.Errorf("%w: unknown auth mode %q", ErrCredentials, a.Mode)
	}
	return NewKeySigner(kp), cp, nil
}

// NewKeySigner signs invoke requests with kp using the OCI SDK's signer. The
// caller (Invoke) sets x-content-sha256 and content-length itself, so the
// SDK is told not to hash (and copy) the body again; the signed header list
// is still OCI's full list for a POST.
func NewKeySigner(kp common.KeyProvider) Signer {
	return common.RequestSignerWithBodyHashingPredicate(kp, signedHeaders, nil, func(*http.Request) bool { return false })
}

// cachedKeyProvider keeps a parsed API key for a while: the SDK's file
// provider re-reads the config and re-parses (and, for an encrypted key,
// re-decrypts) the PEM on every single signature.
type cachedKeyProvider struct {
	src common.KeyProvider
	ttl time.Duration

	mu      sync.Mutex
	key     *rsa.PrivateKey
	keyID   string
	fetched time.Time
}

func (c *cachedKeyProvider) load() (*rsa.PrivateKey, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil && time.Since(c.fetched) < c.ttl {
		return c.key, c.keyID, nil
	}
	key, err := c.src.PrivateRSAKey()
	if err != nil {
		return nil, "", err
	}
	id, err := c.src.KeyID()
	if err != nil {
		return nil, "", err
	}
	c.key, c.keyID, c.fetched = key, id, time.Now()
	return key, id, nil
}

func (c *cachedKeyProvider) PrivateRSAKey() (*rsa.PrivateKey, error) {
	k, _, err := c.load()
	return k, err
}

func (c *cachedKeyProvider) KeyID() (string, error) {
	_, id, err := c.load()
	return id, err
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
