package invoke

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/functions"
)

// FunctionsResolver finds invoke endpoints: first in a static map, then
// with the Functions management API's GetFunction (its invokeEndpoint),
// caching the answer: OCI documents that a function's invoke endpoint never
// changes over its lifetime.
type FunctionsResolver struct {
	static StaticEndpoints
	client functions.FunctionsManagementClient

	mu    sync.Mutex
	cache map[string]string
}

// NewFunctionsResolver builds a resolver signing GetFunction with provider.
// managementEndpoint overrides the regional management endpoint
// (https://functions.<region>.oci.oraclecloud.com), e.g. for the emulator.
func NewFunctionsResolver(provider common.ConfigurationProvider, managementEndpoint string, static StaticEndpoints) (*FunctionsResolver, error) {
	client, err := functions.NewFunctionsManagementClientWithConfigurationProvider(provider)
	if err != nil {
		return nil, fmt.Errorf("%w: functions management client: %w", ErrCredentials, err)
	}
	if managementEndpoint != "" {
		client.Host = managementEndpoint
	}
	// One lookup per attempt; the worker's own retry policy decides when
	// to try again, without holding a slot for the SDK's 1.5 min of retries.
	noRetry := common.NoRetryPolicy()
	client.SetCustomClientConfiguration(common.CustomClientConfiguration{RetryPolicy: &noRetry})
	return &FunctionsResolver{static: static, client: client, cache: map[string]string{}}, nil
}

// Endpoint implements Resolver. A function the service does not know (404)
// or cannot be read (401, 403) wraps ErrNoEndpoint: retrying cannot help. Other
// failures wrap ErrNetwork and are retried like any network error.
func (r *FunctionsResolver) Endpoint(ctx context.Context, functionID string) (string, error) {
	if ep, ok := r.static[functionID]; ok && ep != "" {
		return ep, nil
	}
	r.mu.Lock()
	ep, ok := r.cache[functionID]
	r.mu.Unlock()
	if ok {
		return ep, nil
	}
	resp, err := r.client.GetFunction(ctx, functions.GetFunctionRequest{FunctionId: &functionID})
	if err != nil {
		var se common.ServiceError
		if errors.As(err, &se) {
			switch code := se.GetHTTPStatusCode(); {
			case code == 401 || code == 403 || code == 404:
				return "", fmt.Errorf("%w %s: GetFunction answered %d %s", ErrNoEndpoint, functionID, code, se.GetCode())
			default:
				return "", fmt.Errorf("%w: GetFunction %s answered %d %s", ErrNetwork, functionID, code, se.GetCode())
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: GetFunction %s: %w", ErrNetwork, functionID, err)
	}
	if resp.InvokeEndpoint == nil || *resp.InvokeEndpoint == "" {
		return "", fmt.Errorf("%w %s: GetFunction gave no invokeEndpoint (lifecycle state %s)", ErrNoEndpoint, functionID, resp.LifecycleState)
	}
	ep = *resp.InvokeEndpoint
	r.mu.Lock()
	r.cache[functionID] = ep
	r.mu.Unlock()
	return ep, nil
}
