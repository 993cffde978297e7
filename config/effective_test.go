package config

import (
	"slices"
	"strings"
	"testing"
)

// TestEffectiveListsEveryKeyWithSecretsRedacted: the start-up line's
// settings name every key once, show values as an override would set
// them, and never a secret.
func TestEffectiveListsEveryKeyWithSecretsRedacted(t *testing.T) {
	t.Parallel()
	c := Default()
	c.NATS.URL = "nats://alice:s3cret-pw@nats.example:4222,nats://t0ken-secret@nats2.example:4222"
	c.NATS.Password = "s3cret-pw"
	c.NATS.Token = "t0ken-secret"
	c.Invoke.OCI.Passphrase = "pass-s3cret"
	c.Invoke.Endpoints = map[string]string{"fn-b": "https://b", "fn-a": "https://a"}
	c.Routes = []Route{{Name: "orders", Headers: RouteHeaders{Set: map[string]string{"Authorization": "Bearer route-s3cret"}}}}
	got := c.Effective()
	var keys []string
	values := map[string]string{}
	for _, s := range got {
		keys = append(keys, s.Key)
		values[s.Key] = s.Value
		for _, secret := range []string{"s3cret", "t0ken"} {
			if strings.Contains(s.Value, secret) {
				t.Errorf("%s = %q shows a secret", s.Key, s.Value)
			}
		}
	}
	if !slices.Equal(keys, Keys()) {
		t.Errorf("keys %v, want %v", keys, Keys())
	}
	for k, want := range map[string]string{
		"nats.password": "REDACTED", "invoke.oci.passphrase": "REDACTED", "invoke.endpoints": "fn-a=https://a,fn-b=https://b",
		"consumer.ack_wait": c.Consumer.AckWait.String(), "retry.multiplier": "2", "routes": "orders", "tracing.exporter": "off",
	} {
		if values[k] != want {
			t.Errorf("%s = %q, want %q", k, values[k], want)
		}
	}
}
