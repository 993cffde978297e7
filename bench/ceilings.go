package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke"
)

// poster sends invoke requests the plainest way: one POST with the headers
// invoke.Client sends, signed like invoke.Client signs (same header list,
// same signer), the answer read whole. It shares only the transport's pool
// sizing with the worker, since Go's default of two idle connections per
// host would cap any client.
type poster struct {
	client *http.Client
	signer invoke.Signer // nil: unsigned
	base   string        // up to /functions/
}

// newPoster posts to endpoint, signing with auth unless it is nil.
func newPoster(endpoint string, concurrency int, auth *invoke.OCIAuth) (*poster, error) {
	p := &poster{
		client: &http.Client{Transport: invoke.NewTransport(10*time.Second, concurrency)},
		base:   endpoint + "/" + invoke.APIVersionDefault + "/functions/",
	}
	if auth != nil {
		s, err := invoke.NewOCISigner(*auth)
		if err != nil {
			return nil, err
		}
		p.signer = s
	}
	return p, nil
}

// newPoster posts to endpoint as the run's credentials (an OCI config
// file, profile DEFAULT: the production path) when signed.
func (r *runner) newPoster(endpoint string, signed bool) (*poster, error) {
	if !signed {
		return newPoster(endpoint, r.cfg.Concurrency, nil)
	}
	return newPoster(endpoint, r.cfg.Concurrency, &invoke.OCIAuth{Mode: invoke.AuthAPIKey, ConfigFile: r.creds.ConfigFile, Profile: devcreds.Profile})
}

func (p *poster) close() { p.client.CloseIdleConnections() }

func (p *poster) post(ctx context.Context, fn, id string, body []byte) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+fn+"/actions/invoke", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	h := req.Header
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept", "*/*")
	h.Set("User-Agent", "invoke-worker")
	h.Set("Fn-Invoke-Type", "sync")
	h.Set("Opc-Request-Id", id+"-1")
	if p.signer != nil {
		sum := sha256.Sum256(body)
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("X-Content-Sha256", base64.StdEncoding.EncodeToString(sum[:]))
		if err := p.signer.Sign(req); err != nil {
			return answer{}, err
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answer{}, fmt.Errorf("status %d: %.200s", resp.StatusCode, out)
	}
	return answer{
		status:       resp.StatusCode,
		body:         out,
		contentType:  resp.Header.Get("Content-Type"),
		opcRequestID: resp.Header.Get("Opc-Request-Id"),
		callID:       resp.Header.Get("Fn-Call-Id"),
	}, nil
}

// httpCeiling (c) measures round trips to a fresh emulator without NATS:
// Concurrency goroutines, closed loop, the warm-up then Jobs requests.
func (r *runner) httpCeiling(ctx context.Context, signed bool, name string) (Measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	scoped := settle()
	fail := func(err error) (Measurement, error) { return Measurement{}, fmt.Errorf("%s: %w", name, err) }
	emu, err := r.startEmulator(signed)
	if err != nil {
		return fail(err)
	}
	defer closeEmulator(emu)
	p, err := r.newPoster(emu.URL(), signed)
	if err != nil {
		return fail(err)
	}
	defer p.close()

	if w := r.cfg.warmupJobs(); w > 0 {
		if _, err := r.roundTrips(ctx, p, "bench-w-", w); err != nil {
			return fail(fmt.Errorf("warm-up: %w", err))
		}
	}
	emu.Reset()
	r.log.Info().Str("measurement", name).Int("requests", r.cfg.Jobs).Msg("measuring")
	before := sampleUsage()
	lat, err := r.roundTrips(ctx, p, "bench-m-", r.cfg.Jobs)
	if err != nil {
		return fail(err)
	}
	after := sampleUsage()
	m := Measurement{Name: name, Jobs: len(lat), EndToEnd: latencyOf(lat)}
	usageInto(&m, after.at.Sub(before.at), before, after, scoped)
	return m, nil
}

// roundTrips makes count requests from Concurrency goroutines and returns
// each one's duration. The first failure stops them all.
func (r *runner) roundTrips(ctx context.Context, p *poster, prefix string, count int) ([]time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= count || ctx.Err() != nil {
					return
				}
				start := time.Now()
				if _, err := p.post(ctx, r.cfg.FunctionID, prefix+strconv.Itoa(i), r.body); err != nil {
					cancel(err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return lat, nil
}

// signRate (b) measures RSA-SHA256 signatures with the run's 2048-bit key
// on all cores: GOMAXPROCS goroutines sign the same signing string, as the
// OCI SDK does per request (hash it, then PKCS #1 v1.5), for SignDuration.
func (r *runner) signRate(ctx context.Context, name string) (Measurement, error) {
	scoped := settle()
	ss := []byte(signingString(len(r.body), r.cfg.FunctionID))
	procs := runtime.GOMAXPROCS(0)
	r.log.Info().Str("measurement", name).Dur("for", r.cfg.SignDuration).Int("goroutines", procs).Msg("measuring")
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var total atomic.Int64
	var wg sync.WaitGroup
	before := sampleUsage()
	deadline := before.at.Add(r.cfg.SignDuration)
	for range procs {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				h := sha256.Sum256(ss)
				if _, err := rsa.SignPKCS1v15(rand.Reader, r.key, crypto.SHA256, h[:]); err != nil {
					cancel(err)
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	after := sampleUsage()
	if err := context.Cause(ctx); err != nil {
		return Measurement{}, fmt.Errorf("%s: %w", name, err)
	}
	m := Measurement{Name: name, Jobs: int(total.Load())}
	if m.Jobs == 0 {
		return m, errors.New(name + ": no signature finished in time")
	}
	usageInto(&m, after.at.Sub(before.at), before, after, scoped)
	return m, nil
}

// signingString is what OCI signs for an invoke POST (draft-cavage: one
// "name: value" line per signed header, in invoke.SignedHeaders order).
func signingString(bodyLen int, fn string) string {
	sum := sha256.Sum256(bytes.Repeat([]byte{'a'}, bodyLen))
	values := map[string]string{
		"date":             time.Now().UTC().Format(http.TimeFormat),
		"(request-target)": "post /" + invoke.APIVersionDefault + "/functions/" + fn + "/actions/invoke",
		"host":             "127.0.0.1:8080",
		"content-length":   strconv.Itoa(bodyLen),
		"content-type":     "application/octet-stream",
		"x-content-sha256": base64.StdEncoding.EncodeToString(sum[:]),
	}
	lines := make([]string, 0, len(values))
	for _, h := range invoke.SignedHeaders() {
		lines = append(lines, h+": "+values[h])
	}
	return strings.Join(lines, "\n")
}
