package main

import "strings"

// resolveDriver turns the -driver flag into a Config.Driver value. "memory"
// becomes a named in-process broker all the services share.
func resolveDriver(d string) (dsn string, stop func(), err error) {
	switch d {
	case "", "memory":
		return "memory://microservices", func() {}, nil
	}
	return d, func() {}, nil
}

func driverName(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		return dsn[:i]
	}
	return dsn
}
