package worker_test

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

func otherKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
