package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxClockSkew is how far a request's Date may be from the server
// clock; OCI rejects requests more than 5 minutes off.
const DefaultMaxClockSkew = 5 * time.Minute

// Sentinel errors of signature verification. Every error returned by
// VerifyRequest wraps ErrUnauthenticated and one of the more specific ones,
// so callers can test either with errors.Is.
var (
	// ErrUnauthenticated is wrapped by every verification failure (OCI 401 NotAuthenticated).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrMalformedSignature: Authorization missing or unparsable, unsupported
	// version or algorithm, or required headers not signed.
	ErrMalformedSignature = errors.New("malformed or missing signature")
	// ErrClockSkew: Date missing, unparsable or too far from the server clock.
	ErrClockSkew = errors.New("date missing or outside allowed clock skew")
	// ErrBodyMismatch: x-content-sha256 or content-length do not match the body.
	ErrBodyMismatch = errors.New("body does not match signed digest or length")
	// ErrBadSignature: the signature does not verify, or the key id is not the expected one.
	ErrBadSignature = errors.New("signature does not verify")
)

// Signature scheme constants (OCI signature version 1, draft-cavage-08).
const (
	SignatureVersion   = "1"
	SignatureAlgorithm = "rsa-sha256"
)

// Header lists OCI requires to be signed. Requests with a body (POST, PUT,
// PATCH) must also sign the body headers, even when the body is empty.
var (
	genericSignedHeaders = [...]string{"date", "(request-target)", "host"}
	bodySignedHeaders    = [...]string{"content-length", "content-type", "x-content-sha256"}
)

// SignatureParams are the parameters of an "Authorization: Signature ..." header.
type SignatureParams struct {
	Version   string
	KeyID     string
	Algorithm string
	// Headers are the signed header names, lower-cased, in signing order.
	Headers []string
	// Signature is the base64 signature. It is kept out of JSON and String
	// so that logging SignatureParams cannot leak it.
	Signature string `json:"-"`
}

// String describes the parameters without the signature.
func (p SignatureParams) String() string {
	return fmt.Sprintf("version=%q headers=%q keyId=%q algorithm=%q", p.Version, strings.Join(p.Headers, " "), p.KeyID, p.Algorithm)
}

// ParseAuthorization parses an OCI Authorization header value,
// `Signature version="1",headers="...",keyId="...",algorithm="rsa-sha256",signature="..."`.
// Parameter order is not significant; unknown parameters are ignored;
// duplicates and missing required parameters are errors. It does not check
// the values. Errors wrap ErrUnauthenticated and ErrMalformedSignature and
// never contain the signature.
func ParseAuthorization(v string) (SignatureParams, error) {
	var p SignatureParams
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Signature") {
		return p, malformed("authorization is not a Signature")
	}
	seen := make(map[string]bool, 5)
	rest = strings.TrimSpace(rest)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return p, malformed("authorization parameter without name or value")
		}
		name := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " ")
		if !strings.HasPrefix(rest, `"`) {
			return p, malformed("authorization parameter " + strconv.Quote(name) + " is not quoted")
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return p, malformed("authorization parameter " + strconv.Quote(name) + " is not terminated")
		}
		val := rest[1 : 1+end]
		rest = strings.TrimLeft(rest[end+2:], " ")
		if rest != "" {
			if rest[0] != ',' {
				return p, malformed("authorization parameters not separated by commas")
			}
			rest = strings.TrimLeft(rest[1:], " ")
			if rest == "" {
				return p, malformed("authorization has a trailing comma")
			}
		}
		key := strings.ToLower(name)
		if seen[key] {
			return p, malformed("authorization parameter " + strconv.Quote(name) + " repeated")
		}
		seen[key] = true
		switch key {
		case "version":
			p.Version = val
		case "keyid":
			p.KeyID = val
		case "algorithm":
			p.Algorithm = val
		case "headers":
			p.Headers = strings.Fields(strings.ToLower(val))
		case "signature":
			p.Signature = val
		}
	}
	for _, k := range [...]string{"version", "keyid", "algorithm", "headers", "signature"} {
		if !seen[k] {
			return p, malformed("authorization lacks parameter " + k)
		}
	}
	return p, nil
}

// SigningString builds the string OCI signs: for each header name, a line
// "<lower-case name>: <value>", joined by "\n" without a trailing newline.
// "(request-target)" is the lower-case method, a space and the request URI;
// "host" is r.Host (r.URL.Host if r.Host is empty); other values are the
// first value of that request header.
func SigningString(r *http.Request, headers []string) string {
	var sb strings.Builder
	for i, h := range headers {
		h = strings.ToLower(h)
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(h)
		sb.WriteString(": ")
		switch h {
		case "(request-target)":
			sb.WriteString(strings.ToLower(r.Method))
			sb.WriteByte(' ')
			sb.WriteString(r.URL.RequestURI())
		case "host":
			if r.Host != "" {
				sb.WriteString(r.Host)
			} else {
				sb.WriteString(r.URL.Host)
			}
		default:
			sb.WriteString(r.Header.Get(h))
		}
	}
	return sb.String()
}

// VerifyRequest checks r's OCI signature (version 1, rsa-sha256) against
// pub, with body the complete request body already read from r. It checks
// that the required headers are signed (date, (request-target), host, and
// for POST/PUT/PATCH also content-length, content-type, x-content-sha256),
// that Date is within maxSkew of now (maxSkew <= 0 means
// DefaultMaxClockSkew), that x-content-sha256 and content-length match body,
// and that the signature verifies. The key id is not checked; see
// Config.KeyID. Errors wrap ErrUnauthenticated plus one specific sentinel,
// and never contain the signature.
func VerifyRequest(r *http.Request, body []byte, pub *rsa.PublicKey, now time.Time, maxSkew time.Duration) error {
	_, err := verifyRequest(r, body, pub, "", now, maxSkew)
	return err
}

// verifyRequest is VerifyRequest plus an optional key id check; it returns
// the parsed parameters for logging.
func verifyRequest(r *http.Request, body []byte, pub *rsa.PublicKey, keyID string, now time.Time, maxSkew time.Duration) (SignatureParams, error) {
	if pub == nil {
		return SignatureParams{}, fmt.Errorf("%w: %w: no public key configured", ErrUnauthenticated, ErrBadSignature)
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return SignatureParams{}, malformed("missing Authorization header")
	}
	p, err := ParseAuthorization(auth)
	if err != nil {
		return p, err
	}
	if p.Version != SignatureVersion {
		return p, malformed("unsupported signature version " + strconv.Quote(p.Version))
	}
	if p.Algorithm != SignatureAlgorithm {
		return p, malformed("unsupported signature algorithm " + strconv.Quote(p.Algorithm))
	}
	if missing := missingSignedHeader(r.Method, p.Headers); missing != "" {
		return p, malformed("required header " + strconv.Quote(missing) + " is not signed")
	}
	if keyID != "" && p.KeyID != keyID {
		return p, fmt.Errorf("%w: %w: unexpected keyId", ErrUnauthenticated, ErrBadSignature)
	}
	if err := checkDate(r.Header.Get("Date"), now, maxSkew); err != nil {
		return p, err
	}
	if err := checkBody(r, body, p.Headers); err != nil {
		return p, err
	}
	sig, err := base64.StdEncoding.DecodeString(p.Signature)
	if err != nil {
		return p, malformed("signature is not base64")
	}
	digest := sha256.Sum256([]byte(SigningString(r, p.Headers)))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return p, fmt.Errorf("%w: %w", ErrUnauthenticated, ErrBadSignature)
	}
	return p, nil
}

func malformed(why string) error {
	return fmt.Errorf("%w: %w: %s", ErrUnauthenticated, ErrMalformedSignature, why)
}

// missingSignedHeader returns the first required header absent from signed,
// or "".
func missingSignedHeader(method string, signed []string) string {
	has := func(name string) bool {
		for _, s := range signed {
			if s == name {
				return true
			}
		}
		return false
	}
	for _, h := range genericSignedHeaders {
		if !has(h) {
			return h
		}
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		for _, h := range bodySignedHeaders {
			if !has(h) {
				return h
			}
		}
	}
	return ""
}

func checkDate(v string, now time.Time, maxSkew time.Duration) error {
	if v == "" {
		return fmt.Errorf("%w: %w: missing Date header", ErrUnauthenticated, ErrClockSkew)
	}
	t, err := time.Parse(http.TimeFormat, v)
	if err != nil {
		t, err = time.Parse(time.RFC1123, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %w: unparsable Date header", ErrUnauthenticated, ErrClockSkew)
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxClockSkew
	}
	skew := now.Sub(t)
	if skew < -maxSkew || skew > maxSkew {
		return fmt.Errorf("%w: %w: Date is %s from server time (max %s)", ErrUnauthenticated, ErrClockSkew, skew.Round(time.Second), maxSkew)
	}
	return nil
}

// checkBody compares the body with the signed digest and length. Both are
// checked whenever they are signed, which missingSignedHeader makes
// mandatory for POST.
func checkBody(r *http.Request, body []byte, signed []string) error {
	for _, h := range signed {
		switch h {
		case "x-content-sha256":
			sum := sha256.Sum256(body)
			if r.Header.Get("X-Content-Sha256") != base64.StdEncoding.EncodeToString(sum[:]) {
				return fmt.Errorf("%w: %w: x-content-sha256 does not match the body", ErrUnauthenticated, ErrBodyMismatch)
			}
		case "content-length":
			if r.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
				return fmt.Errorf("%w: %w: content-length does not match the body", ErrUnauthenticated, ErrBodyMismatch)
			}
		}
	}
	return nil
}

// LoadPublicKey parses the first PEM block of pemBytes as an RSA public key,
// either "PUBLIC KEY" (PKIX, what `openssl rsa -pubout` and the OCI console
// produce) or "RSA PUBLIC KEY" (PKCS#1).
func LoadPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("emulator: no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("emulator: parse PKIX public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("emulator: public key is %T, not RSA", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("emulator: parse PKCS#1 public key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("emulator: PEM block %q is not a public key", block.Type)
	}
}
