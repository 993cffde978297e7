package invoke_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
)

const benchFunction = "ocid1.fnfunc.oc1.phx.aaaaaaaabench"

// staticKey is a common.KeyProvider holding one parsed key.
type staticKey struct{ key *rsa.PrivateKey }

func (k staticKey) PrivateRSAKey() (*rsa.PrivateKey, error) { return k.key, nil }
func (k staticKey) KeyID() (string, error) {
	return "ocid1.tenancy.oc1..aaaa/ocid1.user.oc1..aaaa/00:11:22:33", nil
}

// BenchmarkSign signs one invoke request as Invoke does: the body hash
// and date set by the caller, then the SDK signer (RSA-2048, one core).
func BenchmarkSign(b *testing.B) {
	signer := invoke.NewKeySigner(staticKey{testenv.Key()})
	body := bytes.Repeat([]byte("x"), 1024)
	url := "http://127.0.0.1:8080/" + invoke.APIVersionDefault + "/functions/" + benchFunction + "/actions/invoke"
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(body)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		req.Header.Set("X-Content-Sha256", base64.StdEncoding.EncodeToString(sum[:]))
		if err := signer.Sign(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke is one invocation through Client.Invoke against the
// emulator on loopback (echo, 1 KiB), GOMAXPROCS callers at once: signed
// (through the api_key path, the emulator verifying) and unsigned.
func BenchmarkInvoke(b *testing.B) {
	creds := testenv.Credentials(b)
	for _, bc := range []struct {
		name   string
		signer invoke.Signer
		verify emulator.Config
	}{
		{"unsigned", nil, emulator.Config{}},
		{"signed", testenv.Signer(b, creds), emulator.Config{PublicKey: creds.PublicKey, KeyID: creds.KeyID()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			emu := startEmulator(b, bc.verify)
			client, err := invoke.New(invoke.Config{
				Resolver: invoke.StaticEndpoints{benchFunction: emu.URL()},
				Signer:   bc.signer,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer client.CloseIdleConnections()
			body := bytes.Repeat([]byte("x"), 1024)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					resp, err := client.Invoke(ctx, invoke.Request{FunctionID: benchFunction, Body: body, OpcRequestID: "bench-1"})
					if err != nil {
						b.Error(err)
						return
					}
					resp.Release() // as the worker does once the result is stored
				}
			})
		})
	}
}

// startEmulator starts an emulator on loopback that keeps no call records.
func startEmulator(b *testing.B, cfg emulator.Config) *emulator.Emulator {
	emu, err := emulator.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = emu.Close(ctx)
	})
	return emu
}
