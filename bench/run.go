package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"slices"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke/emulator"
)

// runner holds one run's shared state.
type runner struct {
	cfg   Config
	log   zerolog.Logger
	body  []byte
	creds devcreds.Credentials // set when anything signs
	key   *rsa.PrivateKey
	tag   string // names streams on an external server
	seq   int    // measurements so far, for unique stream names
}

// Run measures the full worker and, with Config.Ceilings, its ceilings. On
// failure it returns the measurements finished so far with the error.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	defer func() { rep.Machine.Load1End = loadAverage() }()
	r := &runner{
		cfg:  cfg,
		log:  cfg.Logger.With().Str("component", "bench").Logger(),
		body: emulator.SizedBody(cfg.BodySize),
		tag:  randomTag(),
	}
	signed := !cfg.Unsigned
	rep = Report{
		Machine: machine(),
		Settings: Settings{
			Jobs:         cfg.Jobs,
			Warmup:       cfg.warmupJobs(),
			Concurrency:  cfg.Concurrency,
			BodySize:     cfg.BodySize,
			ResponseSize: cfg.ResponseSize,
			Latency:      cfg.Latency.String(),
			Rate:         cfg.Rate,
			MaxPending:   cfg.maxPending(),
			Rounds:       cfg.Rounds,
			Signed:       signed,
			NATS:         "embedded",
			Isolated:     cfg.Spawn != nil,
		},
	}
	if cfg.NATSURL != "" {
		rep.Settings.NATS = "external"
	}
	if signed || cfg.Ceilings {
		dir, err := os.MkdirTemp("", "worker-bench-creds-")
		if err != nil {
			return rep, fmt.Errorf("bench credentials: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := r.makeCredentials(dir); err != nil {
			return rep, err
		}
	}

	mode := "unsigned"
	if signed {
		mode = "signed"
	}
	// The worker and (d) alternate, (d) right after the worker, so that
	// the two figures of the main ratio share the machine's conditions as
	// far as it allows.
	var workers, bares []Measurement
	var ratios, cpuRatios []float64
	for round := range cfg.Rounds {
		if cfg.Rounds > 1 {
			r.log.Info().Int("round", round+1).Int("of", cfg.Rounds).Msg("round")
		}
		w, err := r.loop(ctx, loopWorker, "full worker ("+mode+")")
		if err != nil {
			return rep, err
		}
		workers = append(workers, w)
		rep.Worker = median(workers)
		if !cfg.Ceilings {
			continue
		}
		d, err := r.loop(ctx, loopBare, "(d) bare loop ("+mode+")")
		if err != nil {
			return rep, err
		}
		bares = append(bares, d)
		ratios = append(ratios, ratio(w.PerSecond, d.PerSecond))
		cpuRatios = append(cpuRatios, ratio(w.CPUPer1000, d.CPUPer1000))
	}
	if !cfg.Ceilings {
		return rep, nil
	}
	c := &Ceilings{BareLoop: median(bares)}
	rep.Ceilings = c
	if c.NATSLoop, err = r.loop(ctx, loopNATS, "(a) NATS-only loop"); err != nil {
		return rep, err
	}
	if c.Signing, err = r.signRate(ctx, fmt.Sprintf("(b) RSA-2048 signing ×%d", rep.Machine.GOMAXPROCS)); err != nil {
		return rep, err
	}
	if c.HTTPSigned, err = r.httpCeiling(ctx, true, "(c) HTTP only, signed"); err != nil {
		return rep, err
	}
	if c.HTTPUnsigned, err = r.httpCeiling(ctx, false, "(c) HTTP only, unsigned"); err != nil {
		return rep, err
	}
	rep.Ratios = &Ratios{
		BareLoop:  medianOf(ratios),
		Signing:   ratio(rep.Worker.PerSecond, c.Signing.PerSecond),
		CPUPerJob: medianOf(cpuRatios),
		Target:    TargetRatio,
	}
	if cfg.Rounds > 1 {
		rep.Ratios.Rounds = ratios
	}
	return rep, nil
}

// median is the measurement with the median throughput (the lower of the
// two middle ones for an even count).
func median(ms []Measurement) Measurement {
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b Measurement) int { return cmp.Compare(a.PerSecond, b.PerSecond) })
	return s[(len(s)-1)/2]
}

// medianOf is the median of vs (the mean of the two middle ones for an
// even count).
func medianOf(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// makeCredentials writes a fresh RSA-2048 API key and an OCI config for it
// into dir, as `oci setup config` would.
func (r *runner) makeCredentials(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("bench credentials: %w", err)
	}
	if err := devcreds.Write(dir, key); err != nil {
		return err
	}
	creds, err := devcreds.Ensure(dir)
	if err != nil {
		return err
	}
	r.creds, r.key = creds, key
	return nil
}
