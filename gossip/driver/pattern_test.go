package driver

import (
	"errors"
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
