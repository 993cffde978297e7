package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/service"
)

// stateMarkerTTL is the state bucket's LimitMarkerTTL (queue.EnsureStateStore):
// it enables the per-key TTLs of wait marks.
const stateMarkerTTL = time.Minute

// checkNATS connects as the worker would and compares the streams,
// buckets and consumer the server has with the configured ones. It never
// changes anything on the server.
func checkNATS(ctx context.Context, c config.Config) []Finding {
	url, embedded := c.NATS.URL, c.NATS.URL == ""
	if embedded {
		url = "nats://" + c.NATS.Embedded.Listen
	}
	ctx, cancel := context.WithTimeout(ctx, c.NATS.ConnectTimeout)
	defer cancel()
	// Connected as the worker connects (credentials, TLS, inbox prefix),
	// under a name of its own.
	cc := service.ConnConfig(c, zerolog.Nop(), url, nil)
	cc.Name += "-doctor"
	nc, err := queue.Connect(ctx, cc)
	if err != nil {
		if embedded {
			return []Finding{{Check: "nats.connect", Severity: Skipped,
				What: fmt.Sprintf("no NATS server at %s (nats.embedded.listen): `worker run` will start its embedded server there; streams, buckets and consumer not checked (%v)", c.NATS.Embedded.Listen, err)}}
		}
		return []Finding{{Check: "nats.connect", Severity: Error, Keys: []string{"nats.url"},
			What: err.Error(),
			Why:  "the worker cannot start without NATS",
			Fix:  "check nats.url, the credentials (nats.creds, nats.nkey, nats.user, nats.token), nats.tls.*, and that the server is reachable from here"}}
	}
	defer nc.Close()
	out := []Finding{ok("nats.connect", "connected to %s (server %s, max_payload %s)", nc.ConnectedServerName(), nc.ConnectedServerVersion(), config.Size(nc.MaxPayload()))}

	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		f := Finding{Check: "nats.jetstream", Severity: Error, What: "JetStream is not available: " + err.Error(),
			Why: "jobs, results and dead letters are JetStream streams: the worker cannot start",
			Fix: "enable JetStream on the server (jetstream { store_dir: ... }) and for this account"}
		return append(out, f)
	}
	out = append(out, ok("nats.jetstream", "JetStream is enabled for this account"))
	out = append(out, checkServerPayload(c, nc.MaxPayload()))

	topo := service.Topology(c)
	for _, want := range topo.Streams() {
		out = append(out, checkStream(ctx, js, "stream "+want.Name, want, streamFields))
	}
	out = append(out, checkStream(ctx, js, "bucket "+c.Streams.State, jetstream.StreamConfig{
		Name: "KV_" + c.Streams.State, MaxAge: c.Streams.StateMaxAge, Replicas: topo.Replicas,
		SubjectDeleteMarkerTTL: stateMarkerTTL, MaxMsgsPerSubject: 1,
	}, bucketFields))
	for _, b := range topo.BodyBuckets() {
		out = append(out, checkStream(ctx, js, "bucket "+b.Bucket, jetstream.StreamConfig{
			Name: "OBJ_" + b.Bucket, MaxAge: b.TTL, Replicas: b.Replicas,
		}, objectFields))
	}
	out = append(out, checkConsumer(ctx, js, c, topo))
	for _, rt := range c.Routes {
		out = append(out, checkRouteStream(ctx, js, rt))
	}
	return out
}

// checkRouteStream: a route's event stream must exist unless the route
// may create it (stream_subjects), or the worker fails at start-up.
func checkRouteStream(ctx context.Context, js jetstream.JetStream, rt config.Route) Finding {
	check := "route." + rt.Name
	s, err := js.Stream(ctx, rt.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && len(rt.StreamSubjects) > 0:
		return Finding{Check: check, Severity: Info, What: fmt.Sprintf("route %s: stream %s does not exist yet: the first worker creates it with %s", rt.Name, rt.Stream, strings.Join(rt.StreamSubjects, ", "))}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return Finding{Check: check, Severity: Error, Keys: []string{"routes[].stream", "routes[].stream_subjects"},
			What: fmt.Sprintf("route %s: its event stream %s does not exist", rt.Name, rt.Stream),
			Why:  "the worker fails at start-up: a route without stream_subjects only reads a stream that exists",
			Fix:  fmt.Sprintf("create %s (nats stream add), fix the route's stream name, or give the route stream_subjects so the worker creates it", rt.Stream)}
	case err != nil:
		return Finding{Check: check, Severity: Error, What: fmt.Sprintf("route %s: stream %s: %v", rt.Name, rt.Stream, err),
			Why: "the worker reads it at start-up", Fix: "check the account's JetStream permissions for the stream"}
	}
	st := s.CachedInfo().State
	return ok(check, "route %s: stream %s exists (%d events)", rt.Name, rt.Stream, st.Msgs)
}

func checkServerPayload(c config.Config, maxPayload int64) Finding {
	const check = "nats.max_payload"
	need := int64(c.Invoke.RequestLimit) + headerAllowance
	if maxPayload >= need {
		return ok(check, "the server's max_payload %s takes a body at invoke.request_limit %s with its headers", config.Size(maxPayload), c.Invoke.RequestLimit)
	}
	return Finding{Check: check, Severity: Warning, Keys: []string{"invoke.request_limit"},
		What: fmt.Sprintf("the server's max_payload is %s, less than invoke.request_limit %s plus room for headers", config.Size(maxPayload), c.Invoke.RequestLimit),
		Why:  "larger bodies only travel through the claim check (`client`, `worker enqueue`, routes); any other publisher is refused with 'maximum payload exceeded', and results above it go to the object store",
		Fix:  fmt.Sprintf("raise max_payload in the server's configuration to %s or more (NATS allows up to 64MB), or make sure every publisher uses the claim check", config.Size(need))}
}

// field compares one setting of a stream's configuration; structural
// fields cannot be changed in place.
type field struct {
	name       string
	key        string // the configuration key that sets it
	structural bool
	get        func(jetstream.StreamConfig) string
}

func durField(d time.Duration) string {
	if d == 0 {
		return "unlimited"
	}
	return dur(d)
}

var streamFields = []field{
	{"subjects", "streams.jobs_subjects, streams.*_prefix", false, func(s jetstream.StreamConfig) string {
		subj := slices.Clone(s.Subjects)
		slices.Sort(subj)
		return strings.Join(subj, ",")
	}},
	{"retention", "", true, func(s jetstream.StreamConfig) string { return s.Retention.String() }},
	{"storage", "", true, func(s jetstream.StreamConfig) string { return s.Storage.String() }},
	{"replicas", "streams.replicas", false, func(s jetstream.StreamConfig) string { return fmt.Sprint(max(s.Replicas, 1)) }},
	{"max age", "streams.*_max_age", false, func(s jetstream.StreamConfig) string { return durField(s.MaxAge) }},
	{"max message size", "streams.max_msg_size", false, func(s jetstream.StreamConfig) string { return config.Size(s.MaxMsgSize).String() }},
	{"duplicate window", "streams.duplicate_window", false, func(s jetstream.StreamConfig) string { return dur(s.Duplicates) }},
	{"discard", "", false, func(s jetstream.StreamConfig) string { return s.Discard.String() }},
	{"message schedules", "", false, func(s jetstream.StreamConfig) string { return fmt.Sprint(s.AllowMsgSchedules) }},
}

var bucketFields = []field{
	{"replicas", "streams.replicas", false, func(s jetstream.StreamConfig) string { return fmt.Sprint(max(s.Replicas, 1)) }},
	{"ttl", "streams.state_max_age", false, func(s jetstream.StreamConfig) string { return durField(s.MaxAge) }},
	{"per-key ttl", "", false, func(s jetstream.StreamConfig) string { return fmt.Sprint(s.SubjectDeleteMarkerTTL > 0) }},
}

var objectFields = []field{
	{"replicas", "streams.replicas", false, func(s jetstream.StreamConfig) string { return fmt.Sprint(max(s.Replicas, 1)) }},
	{"ttl", "streams.dlq_max_age, streams.jobs_max_age, streams.results_max_age", false, func(s jetstream.StreamConfig) string { return durField(s.MaxAge) }},
}

func checkStream(ctx context.Context, js jetstream.JetStream, label string, want jetstream.StreamConfig, fields []field) Finding {
	check := strings.ReplaceAll(label, " ", ".")
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Finding{Check: check, Severity: Info, What: label + " does not exist yet: the first worker to start creates it as configured"}
	}
	if err != nil {
		return Finding{Check: check, Severity: Error, What: label + ": " + err.Error(),
			Why: "the worker reads this at start-up", Fix: "check the account's JetStream permissions for $JS.API.STREAM.INFO." + want.Name}
	}
	got := s.CachedInfo().Config
	var diffs, keys []string
	structural := false
	for _, f := range fields {
		ours, server := f.get(want), f.get(got)
		if ours == server {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s: ours %s, server %s", f.name, ours, server))
		if f.key != "" {
			keys = append(keys, f.key)
		}
		structural = structural || f.structural
	}
	if len(diffs) == 0 {
		return ok(check, "%s exists as configured", label)
	}
	fd := Finding{Check: check, Severity: Warning, Keys: keys,
		What: label + " differs from the configuration: " + strings.Join(diffs, "; "),
		Why:  "a worker with this configuration changes it in place at start-up, and one with the server's values changes it back: every process must run with the same streams.* settings",
		Fix:  "make this configuration match the fleet's, or roll it out to every worker; settings changed by hand with the nats CLI are overwritten"}
	if structural {
		fd.Severity = Error
		fd.Why = "JetStream cannot change a stream's retention or storage in place: the worker fails at start-up"
		fd.Fix = "point streams.* at another stream name, or move the data to a stream made by the worker (nats stream backup, delete, restore)"
	}
	return fd
}

func checkConsumer(ctx context.Context, js jetstream.JetStream, c config.Config, topo queue.Topology) Finding {
	const check = "consumer"
	label := fmt.Sprintf("consumer %s on %s", topo.Durable, topo.JobsStream)
	cons, err := js.Consumer(ctx, topo.JobsStream, topo.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return Finding{Check: check, Severity: Info, What: label + " does not exist yet: the first worker to start creates it as configured"}
	}
	if err != nil {
		return Finding{Check: check, Severity: Error, What: label + ": " + err.Error(),
			Why: "the worker reads this at start-up", Fix: "check the account's JetStream permissions for the consumer API"}
	}
	info := cons.CachedInfo()
	want, got := topo.ConsumerConfig(), info.Config
	var tunable, structural []string
	if want.AckWait != got.AckWait {
		tunable = append(tunable, fmt.Sprintf("consumer.ack_wait: ours %s, server %s", dur(want.AckWait), dur(got.AckWait)))
	}
	if want.MaxAckPending != got.MaxAckPending {
		tunable = append(tunable, fmt.Sprintf("consumer.max_ack_pending: ours %d, server %d", want.MaxAckPending, got.MaxAckPending))
	}
	gotFilters := got.FilterSubjects
	if got.FilterSubject != "" {
		gotFilters = append(gotFilters, got.FilterSubject)
	}
	if !sameSet(want.FilterSubjects, gotFilters) {
		structural = append(structural, fmt.Sprintf("filter: ours %s, server %s", strings.Join(want.FilterSubjects, ","), orNone(strings.Join(gotFilters, ","))))
	}
	if got.MaxDeliver != want.MaxDeliver {
		structural = append(structural, fmt.Sprintf("max deliver: ours unlimited, server %d", got.MaxDeliver))
	}
	state := fmt.Sprintf("%d jobs pending, %d delivered and not acknowledged, %d pull requests waiting", info.NumPending, info.NumAckPending, info.NumWaiting)
	if len(tunable)+len(structural) == 0 {
		return ok(check, "%s exists as configured; %s", label, state)
	}
	f := Finding{Check: check, Severity: Warning, Keys: []string{"consumer.ack_wait", "consumer.max_ack_pending"},
		What: label + " differs from the configuration: " + strings.Join(append(tunable, structural...), "; ") + "; " + state}
	switch {
	case len(tunable) > 0 && c.Consumer.Update:
		f.Why = "consumer.update is true: this worker changes the consumer's values to its own at start-up, for the whole fleet"
		f.Fix = "keep consumer.update for one worker or one run; set it back to false afterwards"
	case len(tunable) > 0:
		f.Why = "the consumer's values win: a worker with this configuration runs with the server's (and logs a warning), so these keys have no effect"
		f.Fix = "to roll out these values, start one worker with consumer.update: true; otherwise set them to the server's"
	default:
		f.Why = "the filter and the unlimited max deliver are structural: a worker sets them at start-up; until then, waiting copies may be handed out as jobs"
		f.Fix = "start a worker of this version (it repairs them), or check that streams.jobs_subjects matches the fleet's"
	}
	return f
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
