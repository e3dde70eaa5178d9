package driver

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		p, t string
		want bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b.d", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
		{"a.*.c", "a.x.c", true},
		{"a.*.c", "a.x.y.c", false},
		{"a.*", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c.d", true},
		{"a.>", "a", false},
		{">", "a", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*.b.>", "x.b.c", true},
		{"*.b.>", "x.c.c", false},
	}
	for _, c := range cases {
		if got := Match(c.p, c.t); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.p, c.t, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"a", "user_service.user.created", "a-b.C9"} {
		if err := ValidateType(ok); err != nil {
			t.Errorf("ValidateType(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "a b", "a.*", "a.>", "é", "a/b", "a:b"} {
		if err := ValidateType(bad); !errors.Is(err, ErrInvalidType) {
			t.Errorf("ValidateType(%q) = %v, want ErrInvalidType", bad, err)
		}
	}
	for _, ok := range []string{"a.*", "a.>", ">", "*.b.*", "a"} {
		if err := ValidatePattern(ok); err != nil {
			t.Errorf("ValidatePattern(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"a.>.b", "a*", "a.b*", "", "a..b"} {
		if err := ValidatePattern(bad); !errors.Is(err, ErrInvalidType) {
			t.Errorf("ValidatePattern(%q) = %v, want ErrInvalidType", bad, err)
		}
	}
}

func TestRedactMasksEverySecret(t *testing.T) {
	cases := map[string]string{
		"redis://user:secret@host:6379/0":   "redis://user:xxxxx@host:6379/0",
		"redis://:secret@host:6379":         "redis://:xxxxx@host:6379",
		"nats://tok@a:4222,b:4222":          "nats://xxxxx@a:4222,b:4222",
		"nats://a:4222":                     "nats://a:4222",
		"memory":                            "memory",
		"rediss://u:p@h/0?mode=pubsub#frag": "rediss://u:xxxxx@h/0?mode=pubsub#frag",
		"redis://h:26379?master_name=m&password=s&sentinel_password=t": "redis://h:26379?master_name=m&password=xxxxx&sentinel_password=xxxxx",
		"nats://h:4222?token=abc&mode=core":                            "nats://h:4222?token=xxxxx&mode=core",
		// Passwords with characters a URL parser stops at, unencoded.
		"redis://user:s3/cret@host:6379/0":  "redis://user:xxxxx@host:6379/0",
		"redis://user:s3#cr?et@host/0":      "redis://user:xxxxx@host/0",
		"nats://user:s3cr%et@host":          "nats://user:xxxxx@host",
		"nats://user:a,b@host:4222":         "nats://user:xxxxx@host:4222",
		"nats://u:p@a:4222,nats://v:q@b:42": "nats://u:xxxxx@a:4222,nats://v:xxxxx@b:42",
		"nats://a:4222,u:p@b:4222":          "nats://a:xxxxx@b:4222",
		"u:secret@host:6379":                "u:xxxxx@host:6379",
		"redis://h:6379/0?nkey_seed=SUAB":   "redis://h:6379/0?nkey_seed=xxxxx",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"secret", "s3/cret", "s3#cr?et", "s3cr%et", "a,b", "SUAB", "tok@"} {
			if strings.Contains(in, secret) && strings.Contains(Redact(in), secret) {
				t.Errorf("Redact(%q) = %q shows %q", in, Redact(in), secret)
			}
		}
	}
}
