package invoke_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
)

// TestFunctionsResolverReadsInvokeEndpointFromGetFunction: a function not
// in the static map is looked up with a signed GetFunction (verified by the
// emulator), then invoked at the endpoint it names; a 404 is ErrNoEndpoint.
func TestFunctionsResolverReadsInvokeEndpointFromGetFunction(t *testing.T) {
	t.Parallel()
	creds := testenv.Credentials(t)
	emu := testenv.StartEmulator(t, creds, map[string]emulator.Behavior{"ocid1.fnfunc.oc1.phx.aaaagone": {Status: http.StatusNotFound}})
	signer, provider, err := invoke.NewOCICredentials(invoke.OCIAuth{ConfigFile: creds.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	res, err := invoke.NewFunctionsResolver(provider, emu.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := invoke.New(invoke.Config{Resolver: res, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx := context.Background()
	resp, err := client.Invoke(ctx, invoke.Request{FunctionID: "ocid1.fnfunc.oc1.phx.aaaalookedup", Body: []byte("found")})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "found" {
		t.Fatalf("body %q", resp.Body)
	}
	if st := emu.Stats(); st.RejectedSignatures != 0 {
		t.Fatalf("%d rejected signatures", st.RejectedSignatures)
	}
	_, err = client.Invoke(ctx, invoke.Request{FunctionID: "ocid1.fnfunc.oc1.phx.aaaagone", Body: []byte("x")})
	if !errors.Is(err, invoke.ErrNoEndpoint) {
		t.Fatalf("unknown function: %v, want ErrNoEndpoint", err)
	}
	var _ common.ConfigurationProvider = provider
}
