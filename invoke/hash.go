package invoke

import (
	"crypto/sha256"
	"encoding/base64"
)

// bodyHash is OCI's x-content-sha256: base64 of the body's SHA-256.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}
