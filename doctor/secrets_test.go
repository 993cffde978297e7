package doctor_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/invoke-worker/worker/doctor"
)

// TestOutputNeverCarriesSecrets runs the doctor, offline and live (against
// a server and against nothing, where error messages quote the URL), with
// every secret the configuration has set, and looks for them in both
// outputs.
func TestOutputNeverCarriesSecrets(t *testing.T) {
	secrets := []string{"pw-S3cret-in-url", "pw-S3cret-key", "tok-S3cret-key", "passphrase-S3cret", "tok-S3cret-in-url", "adm-S3cret-token-0123"}
	l := startLive(t)
	host := strings.TrimPrefix(l.nats.Server.ClientURL(), "nats://")
	for _, tc := range []struct {
		name, url string
		offline   bool
	}{
		{"offline", "nats://u:pw-S3cret-in-url@" + host, true},
		{"live", "nats://u:pw-S3cret-in-url@" + host, false},
		{"unreachable with password", "nats://u:pw-S3cret-in-url@" + closedAddr(t), false},
		{"unreachable with token", "nats://tok-S3cret-in-url@" + closedAddr(t) + ",nats://" + closedAddr(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := l.cfg
			c.NATS.URL = tc.url
			c.NATS.User, c.NATS.Password, c.NATS.Token = "u", "pw-S3cret-key", "tok-S3cret-key"
			c.Invoke.OCI.Passphrase = "passphrase-S3cret"
			c.HTTP.Token = "adm-S3cret-token-0123"
			r := runLive(t, c, doctor.Options{Offline: tc.offline})
			var out bytes.Buffer
			if err := r.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			if err := r.WriteJSON(&out); err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(out.String(), s) {
					t.Errorf("output carries %q:\n%s", s, out.String())
				}
			}
			if !tc.offline && !strings.Contains(out.String(), "nats.connect") {
				t.Errorf("no connection check in:\n%s", out.String())
			}
		})
	}
}
