package driver

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidType is wrapped by ValidateType and ValidatePattern errors.
var ErrInvalidType = errors.New("gossip: invalid event type")

// ValidateType checks an event type as published: one or more dot-separated
// tokens, each of ASCII letters, digits, '_' and '-'. Wildcards are not
// allowed.
func ValidateType(t string) error { return validate(t, false) }

// ValidatePattern checks a subscription pattern: like an event type, but a
// token may be "*" (exactly one token) and the last token may be ">" (one or
// more tokens).
func ValidatePattern(p string) error { return validate(p, true) }

func validate(s string, pattern bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidType)
	}
	if len(s) > 255 {
		return fmt.Errorf("%w %.40q...: longer than 255 bytes", ErrInvalidType, s)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		tok := s[start:i]
		switch {
		case tok == "":
			return fmt.Errorf("%w %q: empty token at byte %d", ErrInvalidType, s, start)
		case tok == "*" || tok == ">":
			if !pattern {
				return fmt.Errorf("%w %q: wildcard %q is only allowed in Subscribe patterns", ErrInvalidType, s, tok)
			}
			if tok == ">" && i != len(s) {
				return fmt.Errorf("%w %q: '>' must be the last token", ErrInvalidType, s)
			}
		default:
			for j := 0; j < len(tok); j++ {
				if c := tok[j]; !isTokenByte(c) {
					return fmt.Errorf("%w %q: byte %q at %d (tokens hold letters, digits, '_' and '-')", ErrInvalidType, s, c, start+j)
				}
			}
		}
		start = i + 1
	}
	return nil
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// IsPattern reports whether p holds a wildcard token.
func IsPattern(p string) bool {
	for i := 0; i < len(p); i++ {
		if (p[i] == '*' || p[i] == '>') && (i == 0 || p[i-1] == '.') && (i == len(p)-1 || p[i+1] == '.') {
			return true
		}
	}
	return false
}

// Match reports whether event type t matches pattern p. Both are assumed
// valid. It does not allocate.
func Match(p, t string) bool {
	for {
		pi := strings.IndexByte(p, '.')
		ti := strings.IndexByte(t, '.')
		ptok, ttok := p, t
		if pi >= 0 {
			ptok = p[:pi]
		}
		if ti >= 0 {
			ttok = t[:ti]
		}
		switch {
		case ptok == ">":
			return true
		case ptok != "*" && ptok != ttok:
			return false
		}
		if pi < 0 || ti < 0 {
			return pi < 0 && ti < 0
		}
		p, t = p[pi+1:], t[ti+1:]
	}
}
