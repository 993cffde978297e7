package rebind

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestRunBindsAgainAndPausesOnlyAfterFailures: a lost binding is bound
// again at once, a failed one after a pause that grows with the failures in
// a row and starts over after a Reset; Run returns when ctx is done.
func TestRunBindsAgainAndPausesOnlyAfterFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errBind := errors.New("no consumer")
	var (
		calls, failed int
		seen          []int // failures in a row when consume was called
	)
	Run(ctx, func(ctx context.Context, b *Backoff) error {
		calls++
		seen = append(seen, b.failures)
		switch calls {
		case 1, 2:
			return errBind
		case 3:
			b.Reset()  // bound
			return nil // lost
		case 4:
			return errBind
		}
		cancel()
		return nil
	}, func(err error) {
		if !errors.Is(err, errBind) {
			t.Errorf("failed(%v)", err)
		}
		failed++
	})
	if calls != 5 || failed != 3 {
		t.Fatalf("%d calls, %d failures; want 5 and 3", calls, failed)
	}
	if want := []int{0, 1, 2, 0, 1}; !slices.Equal(seen, want) {
		t.Fatalf("failures in a row %v, want %v", seen, want)
	}
}

func TestWaitReturnsWhenCtxIsDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Backoff{failures: 1000}
	b.Wait(ctx) // returns: ctx is done
	if b.failures != 1001 {
		t.Fatalf("failures %d", b.failures)
	}
}
