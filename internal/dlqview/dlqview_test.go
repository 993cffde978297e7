package dlqview

import (
	"testing"
)

func TestCompactErrorAndShellJoin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err    string
		status int
		code   string
		want   string
	}{
		{"gave up after 8 attempts: function answered 503 FunctionInvokeServiceUnavailable: busy (opc-request-id a-1)", 503, "FunctionInvokeServiceUnavailable", "gave up after 8 attempts: busy"},
		{"function answered 404 NotAuthorizedOrNotFound (opc-request-id x)", 404, "NotAuthorizedOrNotFound", "function answered 404 NotAuthorizedOrNotFound"},
		{"network error:\n connection refused", 0, "", "network error: connection refused"},
	} {
		if got := compactError(c.err, c.status, c.code); got != c.want {
			t.Errorf("compactError(%q) = %q, want %q", c.err, got, c.want)
		}
	}
	if got := ShellJoin([]string{"--grep", "time out", "--code", "none", "--since", "2025-01-01T00:00:00Z", "--grep", "it's"}); got != `--grep 'time out' --code none --since 2025-01-01T00:00:00Z --grep 'it'\''s'` {
		t.Errorf("shellJoin: %s", got)
	}
}
