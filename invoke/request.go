package invoke

import (
	"fmt"

	"github.com/invoke-worker/worker/internal/httpfield"
)

// checkRequest refuses a Request that no HTTP request can be built from: a
// header name or value HTTP cannot carry. Go's transport refuses such a
// request as well, but only as it sends it and with an error that reads like
// a network failure, which would be retried and counted against the
// function. Values are left out of the error, as net/http does: a header
// may hold a secret.
func checkRequest(r Request) error {
	for _, f := range [...]struct{ name, value string }{
		{"Content-Type", r.ContentType},
		{"Fn-Intent", r.Intent},
		{"Fn-Invoke-Type", r.InvokeType},
		{"Opc-Request-Id", r.OpcRequestID},
	} {
		if i := httpfield.InvalidValueByte(f.value); i >= 0 {
			return fmt.Errorf("%w: %s has control character %q at byte %d", ErrBadRequest, f.name, f.value[i], i)
		}
	}
	for k, vs := range r.Header {
		if !httpfield.ValidName(k) {
			return fmt.Errorf("%w: header name %q is not an HTTP token", ErrBadRequest, k)
		}
		for _, v := range vs {
			if i := httpfield.InvalidValueByte(v); i >= 0 {
				return fmt.Errorf("%w: %s has control character %q at byte %d", ErrBadRequest, k, v[i], i)
			}
		}
	}
	return nil
}
