package driver

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

var (
	registryMu sync.RWMutex
	byName     = map[string]Driver{}
	byScheme   = map[string]Driver{}
)

// ErrUnknownDriver is returned (wrapped) by Lookup for a name or scheme no
// driver registered.
var ErrUnknownDriver = errors.New("gossip: unknown driver")

// Register makes a driver available under name and the given URL schemes.
// It panics if d is nil or a name or scheme is registered twice, as
// database/sql does: both are programming errors found at init time.
func Register(name string, d Driver, schemes ...string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if d == nil {
		panic("gossip/driver: Register driver is nil")
	}
	if _, dup := byName[name]; dup {
		panic("gossip/driver: Register called twice for driver " + name)
	}
	byName[name] = d
	for _, s := range schemes {
		s = strings.ToLower(s)
		if _, dup := byScheme[s]; dup {
			panic("gossip/driver: Register called twice for scheme " + s)
		}
		byScheme[s] = d
	}
}

// Drivers returns the registered driver names and schemes, sorted.
func Drivers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	seen := map[string]bool{}
	for n := range byName {
		seen[n] = true
	}
	for s := range byScheme {
		seen[s+"://"] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup finds the driver for dsn: a registered name, or a URL whose scheme
// is registered. The error wraps ErrUnknownDriver and lists what is
// registered.
func Lookup(dsn string) (Driver, error) {
	registryMu.RLock()
	var d Driver
	if i := strings.Index(dsn, "://"); i >= 0 {
		if _, err := url.Parse(dsn); err != nil && !strings.Contains(dsn, ",") {
			registryMu.RUnlock()
			return nil, fmt.Errorf("%w %q: %v (registered: %s)", ErrUnknownDriver, Redact(dsn), err, strings.Join(Drivers(), ", "))
		}
		d = byScheme[strings.ToLower(dsn[:i])]
	} else {
		d = byName[dsn]
	}
	registryMu.RUnlock()
	if d == nil {
		return nil, fmt.Errorf("%w %q (registered: %s; import a driver package such as _ \"github.com/gossipbus/gossip/drivers/nats\" to add one)",
			ErrUnknownDriver, Redact(dsn), strings.Join(Drivers(), ", "))
	}
	return d, nil
}

// Redact returns dsn with any password replaced by "xxxxx", for errors and
// logs. Strings that are not URLs are returned as they are.
func Redact(dsn string) string {
	i := strings.Index(dsn, "://")
	if i < 0 {
		return dsn
	}
	rest := dsn[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], redactQuery(rest[end:])
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return dsn[:i+3] + authority + tail
	}
	userinfo := authority[:at]
	if c := strings.Index(userinfo, ":"); c >= 0 {
		userinfo = userinfo[:c] + ":xxxxx"
	} else if userinfo != "" {
		// A lone token (nats://TOKEN@host) is a secret too.
		userinfo = "xxxxx"
	}
	return dsn[:i+3] + userinfo + authority[at:] + tail
}

// redactQuery masks the values of query parameters that hold secrets
// (password=, sentinel_password=, token=, ...) in "/path?query#fragment".
func redactQuery(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, frag := s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		k, _, ok := strings.Cut(p, "=")
		lk := strings.ToLower(k)
		if ok && (strings.Contains(lk, "password") || strings.Contains(lk, "secret") || lk == "token" || lk == "pass" || lk == "nkey_seed") {
			params[i] = k + "=xxxxx"
		}
	}
	return s[:q+1] + strings.Join(params, "&") + frag
}
