package config

import "testing"

// TestExampleConfigsLoad keeps the shipped examples valid.
func TestExampleConfigsLoad(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, LoadOptions{File: "../examples/fanout/worker.yaml"})
	if len(cfg.Routes) != 2 || cfg.Routes[0].Intent != "cloudevent" || cfg.Routes[1].Headers.Copy[0] != "*" {
		t.Fatalf("routes: %+v", cfg.Routes)
	}
}
