package main

import (
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/config"
)

// loadConfig reads the file, the environment and the flags, in that order.
// extra are overrides of the command's own flags (applied last). Warnings
// about exposed secrets go to stderr at the configured log level.
func loadConfig(g *globalFlags, extra ...config.Override) (config.Config, error) {
	opts, err := loadOptions(g, extra...)
	if err != nil {
		return config.Config{}, err
	}
	var warnings []string
	opts.Warn = func(w string) { warnings = append(warnings, w) }
	cfg, err := config.Load(opts)
	if err != nil {
		return cfg, err
	}
	log := newLogger(cfg.Log, os.Stderr)
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	return cfg, nil
}

// loadOptions are the sources loadConfig reads: the file, the environment
// and the flags.
func loadOptions(g *globalFlags, extra ...config.Override) (config.LoadOptions, error) {
	var ov []config.Override
	if g.natsURL != "" {
		ov = append(ov, config.Override{Key: "nats.url", Value: g.natsURL})
	}
	if g.logLevel != "" {
		ov = append(ov, config.Override{Key: "log.level", Value: g.logLevel})
	}
	if g.logFormat != "" {
		ov = append(ov, config.Override{Key: "log.format", Value: g.logFormat})
	}
	for _, s := range g.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return config.LoadOptions{}, usagef("--set %q: want KEY=VALUE", s)
		}
		ov = append(ov, config.Override{Key: k, Value: v})
	}
	ov = append(ov, extra...)
	return config.LoadOptions{File: g.configFile, Environ: os.Environ(), Overrides: ov}, nil
}

// flagOverride maps a command flag to a config key when it was given.
func flagOverride(cmd *cobra.Command, flag, key string) []config.Override {
	f := cmd.Flags().Lookup(flag)
	if f == nil || !f.Changed {
		return nil
	}
	return []config.Override{{Key: key, Value: f.Value.String()}}
}

// newLogger builds the process logger on stderr.
func newLogger(c config.Log, stderr *os.File) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if c.Format == "console" {
		l = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000"})
	} else {
		l = zerolog.New(stderr)
	}
	return l.Level(level).With().Timestamp().Logger()
}
