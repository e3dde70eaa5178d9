package driver

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// marker is in every test password, so that a scan of test output can
// prove none is printed.
const marker = "TOPSECRET"

func TestRedactMasksEverySecret(t *testing.T) {
	cases := map[string]string{
		"redis://user:TOPSECRET@host:6379/0":        "redis://user:xxxxx@host:6379/0",
		"redis://:TOPSECRET@host:6379":              "redis://:xxxxx@host:6379",
		"nats://TOPSECRETtok@a:4222,b:4222":         "nats://xxxxx@a:4222,b:4222",
		"nats://a:4222":                             "nats://a:4222",
		"memory":                                    "memory",
		"rediss://u:TOPSECRET@h/0?mode=pubsub#frag": "rediss://u:xxxxx@h/0?mode=pubsub#frag",
		"redis://h:26379?master_name=m&password=TOPSECRET1&sentinel_password=TOPSECRET2": "redis://h:26379?master_name=m&password=xxxxx&sentinel_password=xxxxx",
		"nats://h:4222?token=TOPSECRET&mode=core":                                        "nats://h:4222?token=xxxxx&mode=core",
		// Passwords with characters a URL parser stops at, unencoded: the
		// issue's examples and more.
		"redis://user:s3/cretTOPSECRET@host":                  "redis://user:xxxxx@host",
		"nats://user:s3cr%etTOPSECRET@host":                   "nats://user:xxxxx@host",
		"redis://user:s3/cretTOPSECRET@host:6379/0":           "redis://user:xxxxx@host:6379/0",
		"redis://user:s3#cr?etTOPSECRET@host/0":               "redis://user:xxxxx@host/0",
		"redis://user:TOPSECRET/pw#1?%@host:6379/0":           "redis://user:xxxxx@host:6379/0",
		"nats://user:a,bTOPSECRET@host:4222":                  "nats://user:xxxxx@host:4222",
		"nats://user:p@ssTOPSECRET@host:4222":                 "nats://user:xxxxx@host:4222",
		"nats://u:TOPSECRET@a:1,b:2":                          "nats://u:xxxxx@a:1,b:2",
		"nats://u:TOPSECRET1@a:4222,nats://v:TOPSECRET2@b:42": "nats://u:xxxxx@a:4222,nats://v:xxxxx@b:42",
		"nats://a:4222,u:TOPSECRET@b:4222":                    "nats://a:xxxxx@b:4222",
		"u:TOPSECRET@host:6379":                               "u:xxxxx@host:6379",
		"redis://h:6379/0?nkey_seed=SUABTOPSECRET":            "redis://h:6379/0?nkey_seed=xxxxx",
		// Found by FuzzRedact: an '@' in a query before a secret, a comma
		// in a token of a list, an empty password.
		"nats://h?@&token=TOPSECRET&mode=core": "nats://xxxxx@&token=xxxxx&mode=core",
		"nats://tok,TOPSECRET@a:1,nats://b:2":  "nats://xxxxx@a:1,nats://b:2",
		"nats://TOPSECRET,@nats://h":           "nats://xxxxx@nats://h",
		"redis://TOPSECRET:@host":              "redis://xxxxx@host",
		// An '@' in a secret query value: everything is masked.
		"nats://h:4222?token=a@TOPSECRET":       "nats://xxxxx",
		"redis://h/0?password=TOPSECRET@x&db=1": "redis://xxxxx",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		_, perr := url.Parse(in)
		if perr == nil {
			perr = errors.New("cannot connect to " + in)
		}
		for _, out := range []string{Redact(in), RedactError(in, perr)} {
			if strings.Contains(out, marker) {
				t.Errorf("the redaction of %q shows the password: %q", in, out)
			}
		}
	}
}

// RedactError quotes the parser's error when the URL holds no secret, and
// nothing of the URL when it does: the parser may have quoted the password.
func TestRedactErrorQuotesNothingOfASecretURL(t *testing.T) {
	for _, in := range []string{"redis://user:s3/cretTOPSECRET@host", "nats://user:s3cr%etTOPSECRET@host", "redis://u:TOPSECRET@[::1"} {
		_, err := url.Parse(in)
		if err == nil {
			t.Fatalf("url.Parse(%q) parses; the test needs a URL it cannot parse", in)
		}
		if !strings.Contains(err.Error(), marker) {
			t.Fatalf("url.Parse's error no longer quotes the input: %v", err)
		}
		if got := RedactError(in, err); strings.Contains(got, marker) {
			t.Errorf("RedactError(%q) = %q shows the password", in, got)
		}
	}
	plain := "redis://host:port"
	_, err := url.Parse(plain)
	if err == nil {
		t.Fatalf("url.Parse(%q) parses", plain)
	}
	if got := RedactError(plain, err); got != err.Error() {
		t.Errorf("RedactError(%q) = %q, want the parser's error %v", plain, got, err)
	}
}

// secretKeys are the query parameters Redact masks, as the fuzz target
// writes them.
var secretKeys = []string{"password", "sentinel_password", "token", "secret", "nkey_seed", "pass"}

// FuzzRedact builds a URL (or a list of them) whose password or secret query
// value holds the marker, and checks that neither Redact nor RedactError
// shows it, whatever else the URL holds: unencoded '/', '#', '?', '%', '@'
// and ',' in the password, server lists, paths, queries.
func FuzzRedact(f *testing.F) {
	f.Add("redis", "user", "s3/cret", "", "host:6379", "/0", uint8(0))
	f.Add("nats", "user", "s3cr%et", "", "host", "", uint8(0))
	f.Add("nats", "u", "p", "#1?%@", "a:1,b:2", "", uint8(0))
	f.Add("nats", "", "tok", "", "a:1,nats://b:2", "?mode=core", uint8(1))
	f.Add("rediss", "u", "a,b", "/x", "h", "/0?mode=pubsub#frag", uint8(2))
	f.Add("redis", "", "", "", "h:26379", "?master_name=m", uint8(3))
	f.Add("nats", "", "a@", "", "h", "", uint8(4))
	f.Fuzz(func(t *testing.T, scheme, user, pre, post, hosts, rest string, form uint8) {
		pw := pre + marker + post
		var dsn string
		switch form % 5 {
		case 0: // scheme://user:pw@hosts rest
			dsn = scheme + "://" + user + ":" + pw + "@" + hosts + rest
		case 1: // a token: scheme://pw@hosts rest
			if strings.Contains(pw, ":") {
				return // then it is a user name and a password
			}
			dsn = scheme + "://" + pw + "@" + hosts + rest
		case 2: // the second server of a list
			dsn = scheme + "://" + hosts + "," + scheme + "://" + user + ":" + pw + "@" + hosts + rest
		case 3, 4: // a secret query parameter
			// A value holding '&' or '#' ends at it for every URL
			// parser: what follows is no longer the secret.
			// So does a query that a '#' before it made a fragment.
			if strings.ContainsAny(pw, "&#") || strings.Contains(hosts+rest, "#") {
				return
			}
			sep := "?"
			if strings.Contains(hosts+rest, "?") {
				sep = "&"
			}
			dsn = scheme + "://" + hosts + rest + sep + secretKeys[int(form/5)%len(secretKeys)] + "=" + pw
			if form%5 == 4 {
				dsn += "&mode=core"
			}
		}
		if strings.Count(dsn, marker) != 1 {
			return // the marker is elsewhere too: nothing to prove
		}
		_, perr := url.Parse(dsn)
		if perr == nil {
			perr = errors.New("dial " + dsn + ": refused")
		}
		if out := Redact(dsn); strings.Contains(out, marker) {
			t.Fatalf("Redact(%q) = %q shows the password", dsn, out)
		}
		if out := RedactError(dsn, perr); strings.Contains(out, marker) {
			t.Fatalf("RedactError(%q) = %q shows the password", dsn, out)
		}
	})
}
