package emulator_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the emulator's handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogsNeverContainSignatures(t *testing.T) {
	var out syncBuffer
	cfg := signedConfig(t)
	cfg.Logger = zerolog.New(&out).Level(zerolog.DebugLevel)
	e := start(t, cfg)
	c := client(t, 5*time.Second)

	good := signedInvoke(t, e, testFn, []byte("x"))
	good.Header.Set("opc-request-id", "good-call")
	bad := sign(t, newInvoke(t, context.Background(), invokeURL(e, testFn), []byte("x"), "text/plain"), otherKey(t))
	bad.Header.Set("opc-request-id", "bad-call")
	auths := []string{good.Header.Get("Authorization"), bad.Header.Get("Authorization")}
	if r := do(t, c, good); r.status != 200 {
		t.Fatalf("good call: %d", r.status)
	}
	if r := do(t, c, bad); r.status != 401 {
		t.Fatalf("bad call: %d", r.status)
	}

	waitFor(t, "both calls logged", func() bool {
		s := out.String()
		return strings.Contains(s, `"requestId":"good-call"`) && strings.Contains(s, `"requestId":"bad-call"`)
	})
	logs := out.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		switch {
		case strings.Contains(line, "good-call"):
			if !strings.Contains(line, `"level":"debug"`) || !strings.Contains(line, `"status":200`) || !strings.Contains(line, `"function":"`+testFn+`"`) || !strings.Contains(line, `"duration"`) {
				t.Errorf("request log line %s", line)
			}
		case strings.Contains(line, "bad-call"):
			if !strings.Contains(line, `"level":"warn"`) || !strings.Contains(line, `"status":401`) {
				t.Errorf("rejection log line %s", line)
			}
		}
	}
	for _, a := range auths {
		sig := a[strings.Index(a, `signature="`)+11:]
		if strings.Contains(logs, sig[:20]) || strings.Contains(logs, "Signature version") {
			t.Fatalf("logs contain authorization material:\n%s", logs)
		}
	}
}
