package config

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// redactedValue replaces secrets in Redacted.
const redactedValue = "REDACTED"

// Clone returns a deep copy: its slices and maps are not shared with c.
func (c Config) Clone() Config {
	c.Streams.JobsSubjects = slices.Clone(c.Streams.JobsSubjects)
	c.Invoke.Endpoints = maps.Clone(c.Invoke.Endpoints)
	c.Retry.On = slices.Clone(c.Retry.On)
	c.Retry.Never = slices.Clone(c.Retry.Never)
	c.Emulator.Functions = maps.Clone(c.Emulator.Functions)
	if c.Routes != nil {
		routes := make([]Route, len(c.Routes))
		for i, r := range c.Routes {
			r.StreamSubjects = slices.Clone(r.StreamSubjects)
			r.Subjects = slices.Clone(r.Subjects)
			r.Functions = slices.Clone(r.Functions)
			r.Headers.Copy = slices.Clone(r.Headers.Copy)
			r.Headers.Rename = maps.Clone(r.Headers.Rename)
			r.Headers.Set = maps.Clone(r.Headers.Set)
			routes[i] = r
		}
		c.Routes = routes
	}
	return c
}

// Redacted returns a deep copy that is safe to log: nats.password,
// nats.token, invoke.oci.passphrase and the admin token (also when read
// from their files) are "REDACTED" when set, and so are
// credentials inside nats.url (a user-only URL carries a token there).
func (c Config) Redacted() Config {
	c = c.Clone()
	for _, s := range []*string{&c.NATS.Password, &c.NATS.Token, &c.Invoke.OCI.Passphrase, &c.HTTP.Token} {
		if *s != "" {
			*s = redactedValue
		}
	}
	if strings.Contains(c.NATS.URL, "@") {
		parts := strings.Split(c.NATS.URL, ",")
		for i, p := range parts {
			if !strings.Contains(p, "@") {
				continue
			}
			if u, err := parseNATSURL(strings.TrimSpace(p)); err == nil && u.User != nil {
				parts[i] = redactURL(u)
			} else {
				parts[i] = redactedValue // unparsable: show nothing of it
			}
		}
		c.NATS.URL = strings.Join(parts, ",")
	}
	return c
}

// redactURL renders u with any user info replaced, since NATS URLs carry
// either user:password or a token as the user name.
func redactURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	r := *u
	if _, hasPassword := u.User.Password(); hasPassword {
		r.User = url.UserPassword(u.User.Username(), redactedValue)
	} else {
		r.User = url.User(redactedValue)
	}
	return r.String()
}
