package invoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/job"
)

// Defaults of Config.
const (
	// APIVersionDefault is the path version the OCI Go SDK in go.mod sends
	// (v65.126.0 and later); 20181201 is the older documented one.
	APIVersionDefault     = "20260325"
	RequestLimitDefault   = job.RequestLimitDefault // OCI Functions' request limit
	ResponseLimitDefault  = 100 << 20               // as the OCI SDKs' buffer_limit
	ConnectTimeoutDefault = 10 * time.Second
	ReadTimeoutDefault    = 60 * time.Second
	MaxConnsDefault       = 64
)

// Signer signs an outgoing request in place. The OCI Go SDK's
// common.HTTPRequestSigner satisfies it.
type Signer interface {
	Sign(*http.Request) error
}

// Resolver finds a function's invoke endpoint (scheme and host, such as
// https://abc.us-phoenix-1.functions.oci.oraclecloud.com).
type Resolver interface {
	Endpoint(ctx context.Context, functionID string) (string, error)
}

// StaticEndpoints resolves from a fixed map of function OCID to endpoint.
type StaticEndpoints map[string]string

// Endpoint implements Resolver.
func (m StaticEndpoints) Endpoint(_ context.Context, functionID string) (string, error) {
	if ep, ok := m[functionID]; ok && ep != "" {
		return ep, nil
	}
	return "", fmt.Errorf("%w %s (add it to invoke.endpoints)", ErrNoEndpoint, functionID)
}

// Config configures a Client.
type Config struct {
	// Resolver maps a function id to its invoke endpoint. Required.
	Resolver Resolver
	// Signer signs every request; nil sends unsigned requests (only useful
	// against an emulator that does not verify). Defaults to nil.
	Signer Signer
	// APIVersion is the first path segment. Defaults to APIVersionDefault.
	APIVersion string
	// RequestLimit is the largest body sent, in bytes. Defaults to 6 MiB.
	RequestLimit int64
	// ResponseLimit is the largest answer read, in bytes. Defaults to 100 MiB.
	ResponseLimit int64
	// ConnectTimeout bounds establishing the connection: dialling and the
	// TLS handshake. Defaults to 10s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds every wait once connected, as the OCI SDK's read
	// timeout does: for the answer's status and headers (the request sent),
	// and between reads of its body. It is not a bound on the whole answer:
	// a body that keeps arriving is read however long it takes (see
	// TotalTimeout). A request's own Timeout may only shorten it. Defaults
	// to 60s.
	ReadTimeout time.Duration
	// TotalTimeout caps one attempt from start to the last byte, connecting
	// and reading included; 0 (the default) sets no cap beyond
	// ConnectTimeout and ReadTimeout.
	TotalTimeout time.Duration
	// MaxConns sizes the connection pool: invocations in flight at once.
	// Defaults to 64.
	MaxConns int
	// UserAgent is sent with every request. Defaults to "invoke-worker".
	UserAgent string
	// Transport overrides the HTTP transport (tests). Defaults to
	// NewTransport's, sized for MaxConns. Another must not ask for
	// compression itself (http.Transport.DisableCompression), and must
	// report httptrace's GotConn, which ends ConnectTimeout.
	Transport http.RoundTripper
	// Logger receives debug lines. Defaults to zerolog.Nop().
	Logger *zerolog.Logger
	// Now is the clock used for the Date header. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.APIVersion == "" {
		c.APIVersion = APIVersionDefault
	}
	if c.RequestLimit == 0 {
		c.RequestLimit = RequestLimitDefault
	}
	if c.ResponseLimit == 0 {
		c.ResponseLimit = ResponseLimitDefault
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = ConnectTimeoutDefault
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = ReadTimeoutDefault
	}
	if c.MaxConns == 0 {
		c.MaxConns = MaxConnsDefault
	}
	if c.UserAgent == "" {
		c.UserAgent = "invoke-worker"
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Resolver == nil:
		return errors.New("invoke: Resolver is required")
	case c.RequestLimit < 0 || c.ResponseLimit < 0:
		return errors.New("invoke: limits must not be negative")
	case c.ConnectTimeout < 0 || c.ReadTimeout < 0 || c.TotalTimeout < 0:
		return errors.New("invoke: timeouts must not be negative")
	case c.MaxConns < 0:
		return errors.New("invoke: MaxConns must not be negative")
	case strings.ContainsAny(c.APIVersion, "/ "):
		return fmt.Errorf("invoke: API version %q must be one path segment", c.APIVersion)
	}
	return nil
}

// Request is one invocation.
type Request struct {
	FunctionID string
	Body       []byte
	// ContentType defaults to application/octet-stream, as the SDK sends.
	ContentType string
	// Intent is sent as fn-intent when set (httprequest or cloudevent).
	Intent string
	// InvokeType is sent as fn-invoke-type: sync (default) or detached.
	InvokeType string
	// OpcRequestID is sent as opc-request-id when set.
	OpcRequestID string
	// Timeout is this request's read timeout (see Config.ReadTimeout): it
	// may shorten Config.ReadTimeout, not lengthen it; 0 keeps it. The
	// worker sets it from the job's Invoke-Timeout header.
	Timeout time.Duration
	// Header carries extra headers passed through to the function
	// (traceparent, tracestate). They are not signed. An Accept-Encoding
	// here is sent as is; none is ever added, and the answer is passed
	// back exactly as the function sent it.
	Header http.Header
}

// Response is a success answer (2xx).
type Response struct {
	Status      int
	Body        []byte
	ContentType string
	// ContentEncoding is the answer's Content-Encoding: Body is exactly
	// what the function sent, compressed if it compressed it.
	ContentEncoding string
	OpcRequestID    string
	FnCallID        string
	Duration        time.Duration

	pool *bodyPool // where Body goes back to, nil if it was not pooled
	buf  *[]byte
}

// Release hands Body back for reuse by later invocations; Body must not be
// used after it. Calling it is optional (an unreleased body is simply
// garbage collected) and calling it twice is harmless.
func (r *Response) Release() {
	if r == nil || r.buf == nil {
		return
	}
	r.pool.put(r.buf)
	r.buf, r.Body = nil, nil
}

// Client invokes functions. It is safe for concurrent use.
type Client struct {
	cfg Config
	// rt sends requests. Not an http.Client: invoke requests never follow
	// redirects or carry cookies, and the client would copy every
	// request's headers (for redirects) and add a timer of its own.
	rt        http.RoundTripper
	userAgent []string
	urls      sync.Map     // urlKey -> string
	nurls     atomic.Int64 // entries stored in urls since it was last cleared
	bodies    bodyPool     // response bodies, see Response.Release
}

// Header values shared by every request; never modified.
var (
	acceptAll  = []string{"*/*"}
	invokeSync = []string{"sync"}
)

// New builds a Client.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport(cfg.ConnectTimeout, cfg.MaxConns)
	}
	// No http.Client.Timeout like the Go SDK's 60 s, which cuts off
	// functions that may run 300 s: each attempt is watched on its own.
	return &Client{cfg: cfg, rt: tr, userAgent: []string{cfg.UserAgent}}, nil
}

// NewTransport returns a transport sized for maxConns invocations in flight
// to the same host: Go's default keeps only two idle connections per host,
// which makes a busy worker re-dial (and re-handshake TLS) constantly.
//
// It never asks for compression on its own: Go's default adds
// Accept-Encoding: gzip and then silently decompresses, which would pass on
// a body other than the one the function sent.
func NewTransport(connectTimeout time.Duration, maxConns int) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, 2*maxConns),
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connectTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// CloseIdleConnections releases pooled connections.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// signedHeaders are the headers OCI requires signed on a POST. The body hash
// is computed here rather than by the SDK signer, which would copy the whole
// body into a second buffer first.
var signedHeaders = []string{"date", "(request-target)", "host", "content-length", "content-type", "x-content-sha256"}

// SignedHeaders returns the header list Invoke signs, in order.
func SignedHeaders() []string { return append([]string(nil), signedHeaders...) }

// invokeURL is URL, remembered: the same few functions are invoked over and
// over. The memory is cleared when it reaches maxCachedURLs, so that many
// distinct functions cannot grow it without bound; it refills at once.
func (c *Client) invokeURL(endpoint, functionID string) string {
	key := urlKey{endpoint, functionID}
	if u, ok := c.urls.Load(key); ok {
		return u.(string)
	}
	u := c.URL(endpoint, functionID)
	if c.nurls.Add(1) > maxCachedURLs {
		c.urls.Clear()
		c.nurls.Store(1)
	}
	c.urls.Store(key, u)
	return u
}

// maxCachedURLs bounds Client.urls.
const maxCachedURLs = 4096

type urlKey struct{ endpoint, functionID string }

// URL returns the invoke URL of functionID on endpoint.
func (c *Client) URL(endpoint, functionID string) string {
	return strings.TrimRight(endpoint, "/") + "/" + c.cfg.APIVersion + "/functions/" + url.PathEscape(functionID) + "/actions/invoke"
}

// Invoke makes one attempt. A non-2xx answer, a network failure or a timeout
// returns an *Error; a cancelled ctx returns an error wrapping ctx.Err() so
// callers can tell interruption from failure.
func (c *Client) Invoke(ctx context.Context, r Request) (*Response, error) {
	fail := func(err error) (*Response, error) {
		return nil, &Error{FunctionID: r.FunctionID, Err: err}
	}
	if int64(len(r.Body)) > c.cfg.RequestLimit {
		return fail(fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, len(r.Body), c.cfg.RequestLimit))
	}
	if err := checkRequest(r); err != nil {
		return fail(err)
	}
	endpoint, err := c.cfg.Resolver.Endpoint(ctx, r.FunctionID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("invocation interrupted: %w", context.Cause(ctx))
		}
		var ie *Error
		if errors.As(err, &ie) {
			return nil, ie // the resolver's own, with GetFunction's status
		}
		if !errors.Is(err, ErrNoEndpoint) && !errors.Is(err, ErrNetwork) {
			err = fmt.Errorf("%w: %w", ErrNoEndpoint, err)
		}
		return fail(err)
	}

	read := c.cfg.ReadTimeout
	if r.Timeout > 0 && r.Timeout < read {
		read = r.Timeout
	}
	attemptCtx := ctx
	if c.cfg.TotalTimeout > 0 {
		var cancel context.CancelFunc
		attemptCtx, cancel = context.WithTimeoutCause(ctx, c.cfg.TotalTimeout,
			timeoutCause(fmt.Sprintf("over the total timeout %s", c.cfg.TotalTimeout)))
		defer cancel()
	}
	attemptCtx, watch := newWatchdog(attemptCtx, c.cfg.ConnectTimeout, read)
	defer watch.Stop()

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, c.invokeURL(endpoint, r.FunctionID), http.NoBody)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNoEndpoint, err))
	}
	// Canonical keys set directly: Header.Set would canonicalise each one
	// again on every request.
	h := req.Header
	for k, vs := range r.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h["Content-Type"] = []string{ct}
	h["Accept"] = acceptAll
	h["User-Agent"] = c.userAgent
	if r.Intent != "" {
		h["Fn-Intent"] = []string{r.Intent}
	}
	if r.InvokeType == "" || r.InvokeType == "sync" {
		h["Fn-Invoke-Type"] = invokeSync
	} else {
		h["Fn-Invoke-Type"] = []string{r.InvokeType}
	}
	if r.OpcRequestID != "" {
		h["Opc-Request-Id"] = []string{r.OpcRequestID}
	}
	req.ContentLength = int64(len(r.Body))
	if len(r.Body) > 0 { // http.NoBody otherwise: a zero-length body must not go out chunked
		// Sending the body is progress for the read timeout; GetBody
		// lets the transport resend it on a connection that broke first.
		body := r.Body
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(progressReader{bytes.NewReader(body), watch}), nil
		}
		req.Body, _ = req.GetBody()
	}
	if c.cfg.Signer != nil {
		h["Date"] = []string{c.cfg.Now().UTC().Format(http.TimeFormat)}
		h["Content-Length"] = []string{strconv.Itoa(len(r.Body))}
		h["X-Content-Sha256"] = []string{bodyHash(r.Body)}
		if err := c.cfg.Signer.Sign(req); err != nil {
			// The SDK's errors name files and fields, never key material.
			return fail(fmt.Errorf("%w: %w", ErrSigning, err))
		}
	}

	start := time.Now()
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return c.transportFailure(ctx, attemptCtx, r.FunctionID, 0, "", start, err)
	}
	defer resp.Body.Close()
	watch.gotAnswer(resp.StatusCode)
	opcID := first(resp.Header["Opc-Request-Id"])
	body, buf, err := c.readBody(progressReader{resp.Body, watch}, resp.ContentLength)
	elapsed := time.Since(start)
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			err = fmt.Errorf("the function answered %d with a %w", resp.StatusCode, err)
			return nil, &Error{FunctionID: r.FunctionID, Status: resp.StatusCode, Err: err, OpcRequestID: opcID, Duration: elapsed}
		}
		return c.transportFailure(ctx, attemptCtx, r.FunctionID, resp.StatusCode, opcID, start, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{
			FunctionID:   r.FunctionID,
			Status:       resp.StatusCode,
			OpcRequestID: opcID,
			RetryAfter:   parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now()),
			Duration:     elapsed,
		}
		e.Code, e.Message = parseErrorBody(body)
		c.bodies.put(buf)
		return nil, e
	}
	return &Response{
		pool:            &c.bodies,
		buf:             buf,
		Status:          resp.StatusCode,
		Body:            body,
		ContentType:     first(resp.Header["Content-Type"]),
		ContentEncoding: first(resp.Header["Content-Encoding"]),
		OpcRequestID:    opcID,
		FnCallID:        first(resp.Header["Fn-Call-Id"]),
		Duration:        elapsed,
	}, nil
}

// first is Header.Get for a key already in canonical form (the transport
// canonicalises response headers), without canonicalising it again.
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
