// The validator's checks of single values; Validate composes them.

package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

type validator struct{ errs []error }

func (v *validator) check(ok bool, key, format string, args ...any) {
	if !ok {
		v.errs = append(v.errs, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
	}
}

func (v *validator) positive(key string, d time.Duration) {
	v.check(d > 0, key, "must be more than 0, got %s", d)
}

func (v *validator) nonNegative(key string, d time.Duration) {
	v.check(d >= 0, key, "must not be negative, got %s", d)
}

// sizeRange requires 0 < s, and s <= limit when limit > 0.
func (v *validator) sizeRange(key string, s, limit Size) {
	v.check(s > 0, key, "must be more than 0, got %s", s)
	v.check(limit <= 0 || s <= limit, key, "%s is more than the limit of %s", s, limit)
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	v.check(slices.Contains(allowed, val), key, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

func (v *validator) hostPort(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	v.check(err == nil, key, "%q is not host:port (e.g. 127.0.0.1:4222, :4222)", addr)
}

// name checks a stream or consumer name: JetStream forbids subject tokens'
// special characters and, because names become directories, path separators.
func (v *validator) name(key, s string) {
	switch {
	case s == "":
		v.check(false, key, "must not be empty")
	case strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(".*>/\\", r)
	}):
		v.check(false, key, "%q must not contain spaces, '.', '*', '>', '/' or '\\'", s)
	}
}

// bucket checks an object store bucket name: A-Z a-z 0-9 _ -.
func (v *validator) bucket(key, s string) {
	v.check(job.ValidBucketName(s), key, "%q must be A-Z a-z 0-9 _ - only", s)
}

// subject checks a subject (wild allows '*' tokens and a final '>') or,
// without wild, a literal subject prefix.
func (v *validator) subject(key, s string, wild bool) {
	if s == "" {
		v.check(false, key, "must not be empty")
		return
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			v.check(false, key, "%q has an empty token", s)
		case strings.ContainsFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			v.check(false, key, "%q must not contain spaces", s)
		case wild && (t == "*" || t == ">" && i == len(tokens)-1):
			continue
		case strings.ContainsAny(t, "*>"):
			if wild {
				v.check(false, key, "%q uses a wildcard inside a token or '>' before the end", s)
			} else {
				v.check(false, key, "%q must not contain wildcards", s)
			}
		default:
			continue
		}
		return // one message per subject is enough
	}
}

// streamOverlaps rejects subjects that more than one stream would capture:
// JetStream refuses to create such streams, and a results prefix inside the
// jobs subjects would feed results back in as jobs.
func (v *validator) streamOverlaps(s Streams) {
	results, dlq := s.ResultsPrefix+".>", s.DLQPrefix+".>"
	for _, j := range s.JobsSubjects {
		v.check(!subjectsOverlap(j, results), "streams.results_prefix", "%q overlaps streams.jobs_subjects %q", s.ResultsPrefix, j)
		v.check(!subjectsOverlap(j, dlq), "streams.dlq_prefix", "%q overlaps streams.jobs_subjects %q", s.DLQPrefix, j)
	}
	v.check(!subjectsOverlap(results, dlq), "streams.dlq_prefix", "%q overlaps streams.results_prefix %q", s.DLQPrefix, s.ResultsPrefix)
	wait := s.WaitPrefix + ".>"
	for _, j := range s.JobsSubjects {
		v.check(!subjectsOverlap(j, wait), "streams.wait_prefix", "%q overlaps streams.jobs_subjects %q: workers would take waiting jobs before their time", s.WaitPrefix, j)
	}
	v.check(!subjectsOverlap(results, wait) && !subjectsOverlap(dlq, wait), "streams.wait_prefix", "%q overlaps streams.results_prefix or streams.dlq_prefix", s.WaitPrefix)
}

// subjectsOverlap reports whether some subject matches both patterns.
func subjectsOverlap(a, b string) bool { return job.SubjectsOverlap(a, b) }

// natsURLs checks a comma-separated list of NATS URLs. A URL without a
// scheme is accepted as the NATS client does, as nats://. Messages show
// URLs redacted, since they may carry a password or token.
func (v *validator) natsURLs(key, list string) {
	if list == "" {
		return // embedded server
	}
	for i, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			v.check(false, key, "entry %d is empty", i+1)
			continue
		}
		u, err := parseNATSURL(raw)
		if err != nil {
			v.check(false, key, "entry %d is not a URL", i+1)
			continue
		}
		v.check(slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme), key,
			"%q has scheme %q; want nats, tls, ws or wss", redactURL(u), u.Scheme)
		v.check(u.Hostname() != "", key, "%q has no host", redactURL(u))
		if p := u.Port(); p != "" {
			_, err := strconv.ParseUint(p, 10, 16)
			v.check(err == nil, key, "%q has a bad port", redactURL(u))
		}
	}
}

func parseNATSURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	return url.Parse(raw)
}

func (v *validator) httpURL(key, id, raw string) {
	u, err := url.Parse(raw)
	ok := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	v.check(ok, key, "%s: %q is not an http:// or https:// URL with a host", id, raw)
}

// mapKey checks a function OCID used as a map key; its exact format is the
// function service's business, but a blank or spaced key is always a typo.
func (v *validator) mapKey(key, id string) {
	v.check(id != "" && !strings.ContainsFunc(id, unicode.IsSpace), key, "%q is not a function id", id)
}

// retryRule checks a retry.on or retry.never entry with the grammar of
// the invoke package, which applies the rules.
func (v *validator) retryRule(key, e string) {
	if err := invoke.ParseRetryRule(e); err != nil {
		v.check(false, key, "%w", err)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
