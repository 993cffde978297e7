package invoke

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/functions"
	"golang.org/x/sync/singleflight"
)

// Defaults of ResolverConfig.
const (
	// ResolverCacheSizeDefault bounds the functions a FunctionsResolver
	// remembers: a worker calls a few functions over and over, while a
	// publisher sending random function ids must not grow it without bound.
	ResolverCacheSizeDefault = 4096
	// NotFoundTTLDefault is how long a "not found" answer is remembered.
	NotFoundTTLDefault = 10 * time.Second
)

// ResolverConfig configures a FunctionsResolver.
type ResolverConfig struct {
	// Provider signs GetFunction and names its region. Required.
	Provider common.ConfigurationProvider
	// ManagementEndpoint overrides the regional management endpoint
	// (https://functions.<region>.oci.oraclecloud.com), e.g. for the
	// emulator. Defaults to the region's.
	ManagementEndpoint string
	// Static endpoints are answered without a lookup. Defaults to none.
	Static StaticEndpoints
	// CacheSize bounds how many functions' answers are remembered; the
	// least recently used is forgotten first. Defaults to
	// ResolverCacheSizeDefault.
	CacheSize int
	// NotFoundTTL is how long an answer that the function does not exist
	// or cannot be read (GetFunction's 401, 403, 404, or no invoke
	// endpoint) is remembered, so that a burst of jobs for it costs one
	// lookup; negative remembers none. Endpoints themselves are kept until
	// evicted: OCI documents that a function's invoke endpoint never
	// changes. Defaults to NotFoundTTLDefault.
	NotFoundTTL time.Duration
	// Now is the clock for NotFoundTTL. Defaults to time.Now.
	Now func() time.Time
}

func (c ResolverConfig) withDefaults() ResolverConfig {
	if c.CacheSize == 0 {
		c.CacheSize = ResolverCacheSizeDefault
	}
	if c.NotFoundTTL == 0 {
		c.NotFoundTTL = NotFoundTTLDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first unusable setting.
func (c ResolverConfig) Validate() error {
	switch {
	case c.Provider == nil:
		return errors.New("invoke: ResolverConfig.Provider is required")
	case c.CacheSize < 0:
		return errors.New("invoke: ResolverConfig.CacheSize must not be negative")
	}
	return nil
}

// FunctionsResolver finds invoke endpoints: first in a static map, then
// with the Functions management API's GetFunction (its invokeEndpoint),
// remembering the answer. Concurrent lookups of one function share a
// single GetFunction.
type FunctionsResolver struct {
	cfg    ResolverConfig
	client functions.FunctionsManagementClient
	cache  *lru.Cache[string, resolved] // safe for concurrent use
	flight singleflight.Group
}

// resolved is a remembered answer: an endpoint, or a not-found error that
// expires.
type resolved struct {
	endpoint string
	notFound *Error
	expires  time.Time
}

// NewFunctionsResolver builds a resolver.
func NewFunctionsResolver(cfg ResolverConfig) (*FunctionsResolver, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := functions.NewFunctionsManagementClientWithConfigurationProvider(cfg.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: functions management client: %w", ErrCredentials, err)
	}
	if cfg.ManagementEndpoint != "" {
		client.Host = cfg.ManagementEndpoint
	}
	// One lookup per attempt; the worker's own retry policy decides when
	// to try again, without holding a slot for the SDK's 1.5 min of retries.
	noRetry := common.NoRetryPolicy()
	client.SetCustomClientConfiguration(common.CustomClientConfiguration{RetryPolicy: &noRetry})
	cache, err := lru.New[string, resolved](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("invoke: resolver cache: %w", err)
	}
	return &FunctionsResolver{cfg: cfg, client: client, cache: cache}, nil
}

// Len reports how many functions' answers are remembered.
func (r *FunctionsResolver) Len() int { return r.cache.Len() }

// errLookupAbandoned marks a shared lookup cut short by the context of the
// caller that made it, not by the callers that waited for it.
var errLookupAbandoned = errors.New("lookup abandoned by its caller")

// Endpoint implements Resolver. A function the service does not know (404)
// or that cannot be read (401, 403) is an *Error with that Status wrapping
// ErrNoEndpoint: retrying cannot help. Other failures wrap ErrNetwork and
// are retried like any network error.
func (r *FunctionsResolver) Endpoint(ctx context.Context, functionID string) (string, error) {
	if ep, ok := r.cfg.Static[functionID]; ok && ep != "" {
		return ep, nil
	}
	for {
		if e, ok := r.cached(functionID); ok {
			return e.answer()
		}
		v, err, _ := r.flight.Do(functionID, func() (any, error) {
			// A lookup that finished between the check above and this
			// flight has left its answer.
			if e, ok := r.cached(functionID); ok {
				return e.answer()
			}
			return r.lookup(ctx, functionID)
		})
		if errors.Is(err, errLookupAbandoned) && ctx.Err() == nil {
			continue // another caller's lookup was cancelled: make our own
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", err
		}
		return v.(string), nil
	}
}

// cached returns a remembered answer that has not expired.
func (r *FunctionsResolver) cached(functionID string) (resolved, bool) {
	e, ok := r.cache.Get(functionID)
	if ok && e.notFound != nil && !r.cfg.Now().Before(e.expires) {
		r.cache.Remove(functionID)
		return resolved{}, false
	}
	return e, ok
}

// answer is what Endpoint returns for a remembered answer.
func (e resolved) answer() (string, error) {
	if e.notFound != nil {
		nf := *e.notFound // callers may keep or change what they get
		return "", &nf
	}
	return e.endpoint, nil
}

// lookup asks GetFunction and remembers the answer.
func (r *FunctionsResolver) lookup(ctx context.Context, functionID string) (string, error) {
	resp, err := r.client.GetFunction(ctx, functions.GetFunctionRequest{FunctionId: &functionID})
	if err != nil {
		var se common.ServiceError
		if errors.As(err, &se) {
			code := se.GetHTTPStatusCode()
			e := &Error{FunctionID: functionID, Status: code, Code: se.GetCode(), OpcRequestID: se.GetOpcRequestID()}
			if code == 401 || code == 403 || code == 404 {
				e.Err = fmt.Errorf("%w %s: GetFunction answered %d %s", ErrNoEndpoint, functionID, code, se.GetCode())
				r.rememberNotFound(functionID, e)
			} else {
				e.Err = fmt.Errorf("%w: GetFunction %s answered %d %s", ErrNetwork, functionID, code, se.GetCode())
			}
			return "", e
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w", errLookupAbandoned, ctx.Err())
		}
		return "", fmt.Errorf("%w: GetFunction %s: %w", ErrNetwork, functionID, err)
	}
	if resp.InvokeEndpoint == nil || *resp.InvokeEndpoint == "" {
		e := &Error{FunctionID: functionID, Err: fmt.Errorf("%w %s: GetFunction gave no invokeEndpoint (lifecycle state %s)", ErrNoEndpoint, functionID, resp.LifecycleState)}
		r.rememberNotFound(functionID, e)
		return "", e
	}
	r.cache.Add(functionID, resolved{endpoint: *resp.InvokeEndpoint})
	return *resp.InvokeEndpoint, nil
}

func (r *FunctionsResolver) rememberNotFound(functionID string, e *Error) {
	if r.cfg.NotFoundTTL > 0 {
		r.cache.Add(functionID, resolved{notFound: e, expires: r.cfg.Now().Add(r.cfg.NotFoundTTL)})
	}
}
