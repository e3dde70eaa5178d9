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
	scheme := false
	if i := strings.Index(dsn, "://"); i >= 0 {
		d, scheme = byScheme[strings.ToLower(dsn[:i])], true
	} else {
		d = byName[dsn]
	}
	registryMu.RUnlock()
	if d != nil {
		return d, nil // a URL the driver cannot parse is its error to explain
	}
	if _, err := url.Parse(dsn); scheme && err != nil {
		return nil, fmt.Errorf("%w %q: %v (registered: %s)", ErrUnknownDriver, Redact(dsn), RedactError(dsn, err), strings.Join(Drivers(), ", "))
	}
	return nil, fmt.Errorf("%w %q (registered: %s; import a driver package such as _ \"github.com/gossipbus/gossip/drivers/nats\" to add one)",
		ErrUnknownDriver, Redact(dsn), strings.Join(Drivers(), ", "))
}
