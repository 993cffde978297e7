package invoke_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
)

// lookupEnv is a signed emulator serving GetFunction behind a server that
// holds every GetFunction for delay (so that concurrent lookups overlap),
// and credentials to sign with.
type lookupEnv struct {
	emu      *emulator.Emulator
	url      string
	signer   invoke.Signer
	provider common.ConfigurationProvider
}

func startLookupEnv(t *testing.T, delay time.Duration, functions map[string]emulator.Behavior) lookupEnv {
	t.Helper()
	creds := testenv.Credentials(t)
	emu, err := emulator.New(emulator.Config{PublicKey: creds.PublicKey, KeyID: creds.KeyID(), Functions: functions, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	h := emu.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/emulator/") {
			time.Sleep(delay)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = emu.Close(ctx)
	})
	signer, provider, err := invoke.NewOCICredentials(invoke.OCIAuth{ConfigFile: creds.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	return lookupEnv{emu: emu, url: srv.URL, signer: signer, provider: provider}
}

func (env lookupEnv) resolver(t *testing.T, cfg invoke.ResolverConfig) *invoke.FunctionsResolver {
	t.Helper()
	cfg.Provider, cfg.ManagementEndpoint = env.provider, env.url
	res, err := invoke.NewFunctionsResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (env lookupEnv) client(t *testing.T, res invoke.Resolver) *invoke.Client {
	t.Helper()
	client, err := invoke.New(invoke.Config{Resolver: res, Signer: env.signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	return client
}

// TestFunctionsResolverReadsInvokeEndpointFromGetFunction: a function not
// in the static map is looked up with a signed GetFunction (verified by the
// emulator), then invoked at the endpoint it names; a 404 is ErrNoEndpoint
// with GetFunction's status and code.
func TestFunctionsResolverReadsInvokeEndpointFromGetFunction(t *testing.T) {
	t.Parallel()
	env := startLookupEnv(t, 0, map[string]emulator.Behavior{"ocid1.fnfunc.oc1.phx.aaaagone": {Status: http.StatusNotFound}})
	client := env.client(t, env.resolver(t, invoke.ResolverConfig{}))
	ctx := context.Background()
	resp, err := client.Invoke(ctx, invoke.Request{FunctionID: "ocid1.fnfunc.oc1.phx.aaaalookedup", Body: []byte("found")})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "found" {
		t.Fatalf("body %q", resp.Body)
	}
	if st := env.emu.Stats(); st.RejectedSignatures != 0 || st.Lookups != 1 {
		t.Fatalf("%d rejected signatures, %d lookups", st.RejectedSignatures, st.Lookups)
	}
	_, err = client.Invoke(ctx, invoke.Request{FunctionID: "ocid1.fnfunc.oc1.phx.aaaagone", Body: []byte("x")})
	var ie *invoke.Error
	if !errors.Is(err, invoke.ErrNoEndpoint) || !errors.As(err, &ie) || ie.Status != 404 || ie.Code != "NotAuthorizedOrNotFound" {
		t.Fatalf("unknown function: %v, want ErrNoEndpoint with status 404 NotAuthorizedOrNotFound", err)
	}
	policy, _ := invoke.NewRetryPolicy(invoke.RetryOnDefault(), nil)
	if policy.Retryable(err) || ie.Unhealthy() {
		t.Fatal("a function that does not exist is retried or counted against its health")
	}
}

// TestFunctionsResolverSharesOneLookup: a cold start with many slots
// invoking the same function not yet looked up sends one GetFunction.
func TestFunctionsResolverSharesOneLookup(t *testing.T) {
	t.Parallel()
	const fn, callers = "ocid1.fnfunc.oc1.phx.aaaacold", 16
	env := startLookupEnv(t, 200*time.Millisecond, nil)
	client := env.client(t, env.resolver(t, invoke.ResolverConfig{}))
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range callers {
		wg.Go(func() {
			if _, err := client.Invoke(context.Background(), invoke.Request{FunctionID: fn, Body: []byte("x")}); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if st := env.emu.Stats(); st.Lookups != 1 || st.Calls != callers {
		t.Fatalf("%d callers: %d GetFunction, %d invokes; want 1 and %d", callers, st.Lookups, st.Calls, callers)
	}
}

// TestFunctionsResolverForgetsTheLeastRecentlyUsed: however many distinct
// function ids arrive, at most CacheSize answers are kept, found or not;
// the least recently used is looked up again, a recent one is not.
func TestFunctionsResolverForgetsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	const size, ids = 8, 40
	env := startLookupEnv(t, 0, map[string]emulator.Behavior{"ocid1.fnfunc.oc1.phx.aaaagone": {Status: http.StatusNotFound}})
	res := env.resolver(t, invoke.ResolverConfig{CacheSize: size})
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("ocid1.fnfunc.oc1.phx.aaaa%04d", i) }
	for i := range ids {
		if _, err := res.Endpoint(ctx, id(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := res.Endpoint(ctx, "ocid1.fnfunc.oc1.phx.aaaagone"); !errors.Is(err, invoke.ErrNoEndpoint) {
			t.Fatalf("missing function: %v", err)
		}
		if n := res.Len(); n > size {
			t.Fatalf("%d answers remembered, over the cache size %d", n, size)
		}
	}
	before := env.emu.Stats().Lookups
	if _, err := res.Endpoint(ctx, id(ids-1)); err != nil {
		t.Fatal(err)
	}
	if n := env.emu.Stats().Lookups; n != before {
		t.Fatalf("the most recent function was looked up again (%d lookups, was %d)", n, before)
	}
	if _, err := res.Endpoint(ctx, id(0)); err != nil {
		t.Fatal(err)
	}
	if n := env.emu.Stats().Lookups; n != before+1 {
		t.Fatalf("the least recent function: %d lookups, want %d", n, before+1)
	}
}

// TestFunctionsResolverRemembersNotFoundBriefly: a 404 is remembered for
// NotFoundTTL on the resolver's clock, then asked again.
func TestFunctionsResolverRemembersNotFoundBriefly(t *testing.T) {
	t.Parallel()
	const gone = "ocid1.fnfunc.oc1.phx.aaaagone"
	env := startLookupEnv(t, 0, map[string]emulator.Behavior{gone: {Status: http.StatusNotFound}})
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	res := env.resolver(t, invoke.ResolverConfig{NotFoundTTL: time.Minute, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	ctx := context.Background()
	lookups := func(want int64) {
		t.Helper()
		var ie *invoke.Error
		if _, err := res.Endpoint(ctx, gone); !errors.As(err, &ie) || ie.Status != 404 || !errors.Is(err, invoke.ErrNoEndpoint) {
			t.Fatalf("missing function: %v", err)
		}
		if n := env.emu.Stats().Lookups; n != want {
			t.Fatalf("%d lookups, want %d", n, want)
		}
	}
	lookups(1)
	lookups(1)
	now.Add(int64(time.Minute))
	lookups(2)
}
