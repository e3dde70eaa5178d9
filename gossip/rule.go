package gossip

import (
	"fmt"
	"unicode/utf8"
)

// maxNameBytes is the longest event ID and metadata key Publish accepts.
const maxNameBytes = 256

// The ID and metadata rule, the same on every transport: what it allows
// round-trips byte for byte; what it refuses is an error at Publish.
const (
	ruleID       = "an event ID is 1 to 256 bytes of valid UTF-8 without control characters"
	ruleMetadata = "a metadata key is 1 to 256 bytes of valid UTF-8 without control characters, a value any valid UTF-8"
)

// validID checks an event ID against the rule.
func validID(id string) error {
	if why := nameProblem(id); why != "" {
		return fmt.Errorf("ID %s %s (the rule: %s)", quoteShort(id), why, ruleID)
	}
	return nil
}

// validMetadata checks one metadata key and value against the rule. The
// value, which may be a secret, is never quoted.
func validMetadata(k, v string) error {
	if why := nameProblem(k); why != "" {
		return fmt.Errorf("metadata key %s %s (the rule: %s)", quoteShort(k), why, ruleMetadata)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("the value of metadata key %q is not valid UTF-8 (the rule: %s)", k, ruleMetadata)
	}
	return nil
}

// nameProblem says what breaks the rule for IDs and metadata keys in s, or
// "" when nothing does.
func nameProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxNameBytes:
		return fmt.Sprintf("is %d bytes", len(s))
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for i := 0; i < len(s); i++ {
		// Controls (Unicode Cc) are U+0000-U+001F and U+007F, one byte
		// each, and U+0080-U+009F: 0xC2 0x80-0x9F in valid UTF-8.
		if c := s[i]; c < 0x20 || c == 0x7f || c == 0xc2 && s[i+1] < 0xa0 {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Sprintf("has the control character %U at byte %d", r, i)
		}
	}
	return ""
}

// quoteShort quotes s for an error, cut to its first 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", s[:64], len(s))
	}
	return fmt.Sprintf("%q", s)
}
