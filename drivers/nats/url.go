package nats

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

// ErrBadURL is wrapped by Open's errors about the URL's form or parameters.
var ErrBadURL = errors.New("nats: bad URL")

// setter applies the value of one URL parameter to a config.
type setter func(c *config, v string) error

// params are the URL's query parameters, each with what it sets (see
// Driver.Open and the Option of the same meaning).
var params = map[string]setter{
	"mode": setOneOf(func(c *config) *Mode { return &c.mode },
		map[string]Mode{"jetstream": ModeJetStream, "js": ModeJetStream, "": ModeJetStream, "core": ModeCore}),
	"prefix":          setString(func(c *config) *string { return &c.prefix }),
	"stream_prefix":   setString(func(c *config) *string { return &c.prefix }),
	"stream":          setString(func(c *config) *string { return &c.stream }),
	"create_stream":   setParsed(strconv.ParseBool, func(c *config) *bool { return &c.createStreams }),
	"replicas":        setParsed(strconv.Atoi, func(c *config) *int { return &c.replicas }),
	"max_ack_pending": setParsed(strconv.Atoi, func(c *config) *int { return &c.maxAckPending }),
	"storage": setOneOf(func(c *config) *jetstream.StorageType { return &c.storage },
		map[string]jetstream.StorageType{"file": jetstream.FileStorage, "memory": jetstream.MemoryStorage}),
	"max_age":            setParsed(time.ParseDuration, func(c *config) *time.Duration { return &c.maxAge }),
	"duplicates":         setParsed(time.ParseDuration, func(c *config) *time.Duration { return &c.duplicates }),
	"inactive_threshold": setParsed(time.ParseDuration, func(c *config) *time.Duration { return &c.inactiveThreshold }),
	"max_bytes":          setParsed(parseInt64, func(c *config) *int64 { return &c.maxBytes }),
	"max_msgs":           setParsed(parseInt64, func(c *config) *int64 { return &c.maxMsgs }),
	"ack":                setOneOf(func(c *config) *bool { return &c.syncAck }, map[string]bool{"sync": true, "async": false}),
	"flush":              setOneOf(func(c *config) *bool { return &c.asyncFlush }, map[string]bool{"sync": false, "async": true}),
	"name":               setString(func(c *config) *string { return &c.name }),
	"tls_ca":             setString(func(c *config) *string { return &c.tlsCA }),
	"tls_cert":           setString(func(c *config) *string { return &c.tlsCert }),
	"tls_key":            setString(func(c *config) *string { return &c.tlsKey }),
	"creds": func(c *config, v string) error {
		c.natsOptions = append(c.natsOptions, natsgo.UserCredentials(v))
		return nil
	},
	"nkey": func(c *config, v string) error {
		o, err := natsgo.NkeyOptionFromSeed(v)
		if err == nil {
			c.natsOptions = append(c.natsOptions, o)
		}
		return err
	},
}

// setString sets a string as it is.
func setString(field func(*config) *string) setter {
	return func(c *config, v string) error { *field(c) = v; return nil }
}

// setParsed sets what parse makes of the value.
func setParsed[T any](parse func(string) (T, error), field func(*config) *T) setter {
	return func(c *config, v string) error {
		x, err := parse(v)
		if err == nil {
			*field(c) = x
		}
		return err
	}
}

// setOneOf sets one of choices, by its name in any case.
func setOneOf[T any](field func(*config) *T, choices map[string]T) setter {
	want := strings.Join(slices.DeleteFunc(slices.Sorted(maps.Keys(choices)), func(k string) bool { return k == "" }), ", ")
	return func(c *config, v string) error {
		x, ok := choices[strings.ToLower(v)]
		if !ok {
			return fmt.Errorf("want one of %s", want)
		}
		*field(c) = x
		return nil
	}
}

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// parseURL applies the settings of dsn's query to cfg and returns the server
// list nats.Connect takes.
func parseURL(dsn string, cfg *config) (servers string, err error) {
	if dsn == "nats" || dsn == "" {
		return DefaultURL, nil
	}
	servers, query, _ := strings.Cut(dsn, "?")
	servers = strings.TrimSuffix(servers, "/")
	if servers == "" || strings.HasSuffix(servers, "://") {
		servers = DefaultURL
	}
	for s := range strings.SplitSeq(servers, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		if _, err := url.Parse(s); err != nil {
			return "", fmt.Errorf("%w %q: %s", ErrBadURL, driver.Redact(s), driver.RedactError(s, errors.Unwrap(err)))
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("%w %q: query: %v", ErrBadURL, driver.Redact(servers), err)
	}
	for k, vs := range q {
		set, ok := params[k]
		if !ok {
			return "", fmt.Errorf("%w %q: unknown parameter %q (known: %s)",
				ErrBadURL, driver.Redact(servers), k, strings.Join(slices.Sorted(maps.Keys(params)), ", "))
		}
		if err := set(cfg, vs[len(vs)-1]); err != nil {
			return "", fmt.Errorf("%w %q: parameter %s=%q: %v", ErrBadURL, driver.Redact(servers), k, vs[len(vs)-1], err)
		}
	}
	if cfg.tlsCA != "" {
		cfg.natsOptions = append(cfg.natsOptions, natsgo.RootCAs(cfg.tlsCA))
	}
	if cfg.tlsCert != "" || cfg.tlsKey != "" {
		cfg.natsOptions = append(cfg.natsOptions, natsgo.ClientCert(cfg.tlsCert, cfg.tlsKey))
	}
	return servers, nil
}
