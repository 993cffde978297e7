package worker

// BreakerStates returns each circuit breaker's state (closed, half-open,
// open) by key, for tests.
func (w *Worker) BreakerStates() map[string]string { return w.breakers.states() }
