package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ConsumerPolicy says what a process may do to the shared consumer when it
// exists already.
type ConsumerPolicy struct {
	// Update lets this process change the consumer's tunable settings
	// (consumer.ack_wait, consumer.max_ack_pending) to its own
	// configuration (consumer.update). Without it a process whose settings
	// differ leaves the consumer as it is and runs with the server's
	// settings, so a fleet with mixed configurations does not flip them
	// back and forth. Structural settings are always applied.
	Update bool
	// Logger receives what differs and what was changed. Defaults to
	// zerolog.Nop().
	Logger *zerolog.Logger
}

// ConsumerSetting is one setting of the shared consumer as this process's
// configuration has it and as the server had it.
type ConsumerSetting struct {
	// Name is the configuration key of a tunable setting
	// (consumer.ack_wait), or the consumer field of a structural one
	// (filter_subjects).
	Name   string
	Ours   string
	Server string
}

// ConsumerReport says what EnsureConsumer found and did.
type ConsumerReport struct {
	// Created is true when the consumer did not exist.
	Created bool
	// Kept are tunable settings that differ from this process's
	// configuration and were left as the server has them (no
	// ConsumerPolicy.Update): the consumer runs with Server.
	Kept []ConsumerSetting
	// Updated are settings changed on the server: tunable ones with
	// ConsumerPolicy.Update, structural ones always.
	Updated []ConsumerSetting
}

// consumerField is a setting EnsureConsumer compares: how to show it and
// how to apply it from one configuration to another.
type consumerField struct {
	name string
	// structural settings are required for correctness (the filter keeps
	// waiting copies away from workers; MaxDeliver -1 keeps the server
	// from dropping jobs): every process applies its own, whatever
	// ConsumerPolicy says.
	structural bool
	show       func(jetstream.ConsumerConfig) string
	apply      func(dst *jetstream.ConsumerConfig, src jetstream.ConsumerConfig)
}

// consumerFields returns every setting of Topology.ConsumerConfig that can
// change on an existing consumer. A setting added to ConsumerConfig that
// can differ between processes belongs here, or it is never applied to
// an existing consumer.
func consumerFields() []consumerField {
	return []consumerField{
		{
			name:  "consumer.ack_wait",
			show:  func(c jetstream.ConsumerConfig) string { return c.AckWait.String() },
			apply: func(d *jetstream.ConsumerConfig, s jetstream.ConsumerConfig) { d.AckWait = s.AckWait },
		},
		{
			name:  "consumer.max_ack_pending",
			show:  func(c jetstream.ConsumerConfig) string { return strconv.Itoa(c.MaxAckPending) },
			apply: func(d *jetstream.ConsumerConfig, s jetstream.ConsumerConfig) { d.MaxAckPending = s.MaxAckPending },
		},
		{
			name:       "filter_subjects",
			structural: true,
			show:       func(c jetstream.ConsumerConfig) string { return strings.Join(filters(c), ",") },
			apply: func(d *jetstream.ConsumerConfig, s jetstream.ConsumerConfig) {
				d.FilterSubject, d.FilterSubjects = s.FilterSubject, s.FilterSubjects
			},
		},
		{
			name:       "max_deliver",
			structural: true,
			show:       func(c jetstream.ConsumerConfig) string { return strconv.Itoa(c.MaxDeliver) },
			apply:      func(d *jetstream.ConsumerConfig, s jetstream.ConsumerConfig) { d.MaxDeliver = s.MaxDeliver },
		},
	}
}

// filters returns a consumer's filter subjects however they were given
// (the server reports a single filter as FilterSubject), sorted.
func filters(c jetstream.ConsumerConfig) []string {
	out := slices.Clone(c.FilterSubjects)
	if c.FilterSubject != "" {
		out = append(out, c.FilterSubject)
	}
	slices.Sort(out)
	return out
}

// EnsureConsumer creates the shared consumer when it is missing. When it
// exists, its structural settings are brought to this process's (an
// older version's consumer has no filter, and would deliver waiting
// copies as jobs), and its tunable settings only with p.Update: otherwise
// each one that differs is logged as a warning and reported in Kept, and
// the consumer keeps the server's value. Settings the product does not
// manage (set by hand with the nats CLI) are kept either way.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, t Topology, p ConsumerPolicy) (jetstream.Consumer, ConsumerReport, error) {
	t = t.WithDefaults()
	log := zerolog.Nop()
	if p.Logger != nil {
		log = *p.Logger
	}
	ours := t.ConsumerConfig()
	var rep ConsumerReport
	cons, err := js.Consumer(ctx, t.JobsStream, t.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, t.JobsStream, ours)
		if err == nil {
			rep.Created = true
			log.Info().Str("consumer", t.Durable).Str("stream", t.JobsStream).Msg("created the shared consumer")
			return cons, rep, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, rep, fmt.Errorf("consumer %s on %s: %w", t.Durable, t.JobsStream, replicasError(err, t.Replicas))
		}
		// Another process created it meanwhile, with other settings.
		cons, err = js.Consumer(ctx, t.JobsStream, t.Durable)
	}
	if err != nil {
		return nil, rep, fmt.Errorf("consumer %s on %s: %w", t.Durable, t.JobsStream, err)
	}

	server := cons.CachedInfo().Config
	want := server // keeps what the product does not manage
	for _, f := range consumerFields() {
		ourValue, serverValue := f.show(ours), f.show(server)
		if ourValue == serverValue {
			continue
		}
		s := ConsumerSetting{Name: f.name, Ours: ourValue, Server: serverValue}
		if f.structural || p.Update {
			f.apply(&want, ours)
			rep.Updated = append(rep.Updated, s)
		} else {
			rep.Kept = append(rep.Kept, s)
		}
	}
	if len(rep.Kept) > 0 {
		ev := log.Warn().Str("consumer", t.Durable)
		for _, s := range rep.Kept {
			ev = ev.Dict(s.Name, zerolog.Dict().Str("ours", s.Ours).Str("server", s.Server))
		}
		ev.Msg("the shared consumer's settings differ from this process's configuration; running with the server's " +
			"(set consumer.update: true on one worker to change them)")
	}
	if len(rep.Updated) == 0 {
		return cons, rep, nil
	}
	if want.FilterSubject != "" && len(want.FilterSubjects) > 0 {
		want.FilterSubject = "" // ours are in FilterSubjects; the server takes one form only
	}
	cons, err = js.UpdateConsumer(ctx, t.JobsStream, want)
	if err != nil {
		return nil, rep, fmt.Errorf("update consumer %s on %s: %w", t.Durable, t.JobsStream, err)
	}
	ev := log.Info().Str("consumer", t.Durable)
	for _, s := range rep.Updated {
		ev = ev.Dict(s.Name, zerolog.Dict().Str("was", s.Server).Str("now", s.Ours))
	}
	ev.Msg("updated the shared consumer's settings")
	return cons, rep, nil
}
