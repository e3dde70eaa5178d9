package driver

import "strings"

// Redact returns dsn with its secrets masked, for errors, logs and span
// attributes: the password (or lone token) of every URL in it, and query
// parameters that hold secrets (password=, sentinel_password=, token=,
// secret=, nkey_seed=). It is the one redactor of gossip and its drivers.
// It takes a URL, a comma-separated list of them ("nats://u:p@a,b:4222"),
// or a driver name, and leaks nothing even where the URL does not parse:
// a password may hold '/', '#', '?', '%', '@' or ',' unencoded, so
// everything up to the last '@' of a server is user information. (Where a
// query value holds an '@', more than the password is masked: never less;
// where a secret query value holds the server's last '@', the whole server
// is.) A secret query value ends at '&' or '#', as for any URL parser.
func Redact(dsn string) string {
	var out strings.Builder
	for dsn != "" {
		i := strings.Index(dsn, "://")
		if i < 0 {
			out.WriteString(redactServer(dsn))
			break
		}
		out.WriteString(dsn[:i+3])
		rest := dsn[i+3:]
		// The next URL of a list starts after a comma, unless an '@' comes
		// after that comma: then the comma is in user information.
		end := len(rest)
		if j := strings.Index(rest, "://"); j >= 0 {
			if c := strings.LastIndexByte(rest[:j], ','); c >= 0 && c > strings.LastIndexByte(rest[:j], '@') {
				end = c + 1
			}
		}
		out.WriteString(redactServer(rest[:end]))
		dsn = rest[end:]
	}
	return out.String()
}

// RedactError is err's text for an error about dsn (a URL parser's, which
// may quote the URL or a piece of it), unless dsn holds a secret: then only
// a reason that quotes nothing.
func RedactError(dsn string, err error) string {
	if Redact(dsn) == dsn {
		return err.Error()
	}
	return "cannot parse it (a password must have '/', '#', '?', '%' and '@' percent-encoded)"
}

// redactServer masks the user information (up to the last '@') and the
// secret query parameters of "userinfo@host:port/path?query#fragment",
// which may be a comma-separated list of servers.
func redactServer(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return redactQuery(s, false)
	}
	user := s[:at]
	if redactQuery(user, false) != user {
		// A secret query parameter before the '@': the '@' may be part of
		// its value, and what follows too.
		return "xxxxx"
	}
	// Where a '?' comes before the '@', a query may have begun there: what
	// follows the '@' is read as its parameters.
	inQuery := strings.IndexByte(user, '?') >= 0
	// The user name stays, unless it may be part of a secret: it holds
	// what no user name holds, or an empty password may make it a token.
	if c := strings.IndexByte(user, ':'); c >= 0 && c < len(user)-1 && !strings.ContainsAny(user[:c], "/?#,@") {
		user = user[:c] + ":xxxxx"
	} else {
		user = "xxxxx"
	}
	return user + "@" + redactQuery(s[at+1:], inQuery)
}

// redactQuery masks the values of query parameters that hold secrets
// (password=, sentinel_password=, token=, ...) in "/path?query#fragment",
// or in "query#fragment" when inQuery says the query began before s.
func redactQuery(s string, inQuery bool) string {
	q := -1
	if !inQuery {
		if q = strings.IndexByte(s, '?'); q < 0 {
			return s
		}
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
