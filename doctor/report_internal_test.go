package doctor

import (
	"strings"
	"testing"

	"github.com/invoke-worker/worker/config"
)

// The scrub is the last line of defence: a library's error message that
// quotes a secret (none does today) is cleaned before it is shown.
func TestScrubRemovesConfiguredSecretsFromEveryField(t *testing.T) {
	c := config.Default()
	c.NATS.URL = "nats://u:url-pw@h:4222,nats://url-token@h2:4222"
	c.NATS.Password, c.NATS.Token, c.Invoke.OCI.Passphrase = "the-pw", "the-token", "the-passphrase"
	all := "url-pw url-token the-pw the-token the-passphrase"
	r := Report{Policy: []PolicyLine{{Topic: "t", Text: all}}}
	r.add(Finding{Check: "x", Severity: Error, What: all, Why: all, Fix: all})
	r.scrub(secrets(c))
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Fields(all) {
		if strings.Contains(b.String(), s) {
			t.Errorf("%q survived:\n%s", s, b.String())
		}
	}
	if !strings.Contains(b.String(), "REDACTED") {
		t.Error("nothing redacted")
	}
}
