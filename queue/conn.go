package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ConnConfig says how to reach NATS.
type ConnConfig struct {
	// URLs is one or more server URLs, comma-separated. Required unless
	// InProcess is set.
	URLs string
	// Creds is a credentials (JWT + seed) file; NKey is an nkey seed file.
	Creds, NKey string
	// User/Password and Token: plain credentials.
	User, Password, Token string
	// TLS files; any set turns TLS on.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces "_INBOX" in reply subjects (JetStream API
	// responses included), so permissions can give each user its own.
	// Defaults to the client's "_INBOX".
	InboxPrefix string
	// Name identifies the connection on the server. Defaults to
	// ConnNameDefault.
	Name string
	// ConnectTimeout bounds each dial. Defaults to 5s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts. Defaults to 1s.
	ReconnectWait time.Duration
	// InProcess connects to an embedded server without a socket.
	InProcess *server.Server
	// Logger reports disconnects and reconnects. Defaults to zerolog.Nop().
	Logger zerolog.Logger
	// OnStateChange, when set, is called with true on (re)connect and false
	// on disconnect, so readiness can follow the connection.
	OnStateChange func(connected bool)
}

// Defaults of ConnConfig.
const (
	ConnNameDefault       = "invoke-worker"
	ConnectTimeoutDefault = 5 * time.Second
	ReconnectWaitDefault  = time.Second
	// InboxPrefixDefault is the NATS client's own.
	InboxPrefixDefault = "_INBOX"
)

// Connect dials NATS. Reconnects are endless: the client's default gives up
// after 60 tries, after which every consumer stops silently.
func Connect(ctx context.Context, c ConnConfig) (*nats.Conn, error) {
	c.Name = cmp.Or(c.Name, ConnNameDefault)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, ConnectTimeoutDefault)
	c.ReconnectWait = cmp.Or(c.ReconnectWait, ReconnectWaitDefault)
	log := c.Logger
	state := c.OnStateChange
	if state == nil {
		state = func(bool) {}
	}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.Timeout(c.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			state(false)
			if err != nil {
				log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			} else {
				log.Info().Msg("disconnected from NATS")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			state(true)
			log.Info().Str("server", redactURL(nc.ConnectedUrl())).Msg("reconnected to NATS")
		}),
		nats.ClosedHandler(func(*nats.Conn) { state(false) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS async error")
		}),
	}
	if c.InboxPrefix != "" && c.InboxPrefix != InboxPrefixDefault {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey seed %s: %w", c.NKey, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" || c.Password != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		if c.TLSCert == "" || c.TLSKey == "" {
			return nil, errors.New("nats: TLS client certificate needs both cert and key")
		}
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	urls := c.URLs
	if c.InProcess != nil {
		opts = append(opts, nats.InProcessServer(c.InProcess))
		if urls == "" {
			urls = c.InProcess.ClientURL()
		}
	}
	if urls == "" {
		return nil, errors.New("nats: no server URL")
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(urls, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("nats: connect to %s%s: %w", redactURLs(urls), c.describeAuth(), r.err)
		}
		state(true)
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("nats: connect to %s: %w", redactURLs(urls), ctx.Err())
	}
}

// describeAuth names the credentials and TLS files a connection used, never
// their contents, so a refused connection says which one to check.
func (c ConnConfig) describeAuth() string {
	var used []string
	if c.Creds != "" {
		used = append(used, "creds file "+c.Creds)
	}
	if c.NKey != "" {
		used = append(used, "nkey seed file "+c.NKey)
	}
	if c.User != "" || c.Password != "" {
		used = append(used, fmt.Sprintf("user %q and password", c.User))
	}
	if c.Token != "" {
		used = append(used, "token")
	}
	if c.TLSCA != "" {
		used = append(used, "TLS CA file "+c.TLSCA)
	}
	if c.TLSCert != "" {
		used = append(used, "TLS client certificate "+c.TLSCert)
	}
	if len(used) == 0 {
		return " without credentials"
	}
	return " with " + strings.Join(used, ", ")
}

// redactURL hides a password or token embedded in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
		if u, err := url.Parse(parts[i]); err == nil && u.User != nil {
			if _, hasPw := u.User.Password(); !hasPw {
				// nats://TOKEN@host: the user part is the token.
				u.User = url.User("REDACTED")
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}
