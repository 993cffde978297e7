// Package httpfield holds the one rule of what an HTTP header can carry, so
// that job parsing (which refuses such a job up front) and the invoke client
// (which refuses to build such a request) agree with each other and with Go's
// HTTP transport, which refuses to send the request otherwise.
//
// The rule is RFC 9110 section 5, as golang.org/x/net/http/httpguts (the
// copy net/http vendors) implements it; that module is not a dependency of
// ours and would bring golang.org/x/text with it for these two loops. A test
// checks every byte against the transport itself.
package httpfield

// ValidValue reports whether v may be sent as a header field value: no
// control characters (0x00-0x1f, 0x7f) except horizontal tab. Bytes from
// 0x80 up (obs-text, and so any UTF-8, valid or not) are allowed, as the
// transport allows them.
func ValidValue(v string) bool { return InvalidValueByte(v) < 0 }

// InvalidValueByte returns the index of the first byte of v that a header
// field value cannot carry, or -1 when there is none.
func InvalidValueByte(v string) int {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return i
		}
	}
	return -1
}

// ValidName reports whether k may be sent as a header field name: a
// non-empty token (letters, digits and !#$%&'*+-.^_`|~).
func ValidName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenByte(k[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
