package driver

import (
	"fmt"
	"unicode/utf8"
)

// MaxNameBytes is the longest event ID and metadata key the rule allows.
const MaxNameBytes = 256

// The rule for event IDs, sources and metadata, the same on every
// transport: what it allows round-trips byte for byte (drivers escape what
// their wire cannot carry as is); what it refuses is an error at Publish,
// and an unreadable delivery when another producer sends it.
const (
	RuleID       = "an event ID is 1 to 256 bytes of valid UTF-8 without control characters"
	RuleSource   = "an event source is valid UTF-8"
	RuleMetadata = "a metadata key is 1 to 256 bytes of valid UTF-8 without control characters, a value any valid UTF-8"
)

// CheckID checks an event ID against RuleID.
func CheckID(id string) error {
	if why := nameProblem(id); why != "" {
		return fmt.Errorf("ID %s %s (the rule: %s)", quoteShort(id), why, RuleID)
	}
	return nil
}

// CheckSource checks an event source against RuleSource.
func CheckSource(src string) error {
	if !utf8.ValidString(src) {
		return fmt.Errorf("source %s is not valid UTF-8 (the rule: %s)", quoteShort(src), RuleSource)
	}
	return nil
}

// CheckMetadata checks one metadata key and value against RuleMetadata. The
// value, which may be a secret, is never quoted.
func CheckMetadata(k, v string) error {
	if why := nameProblem(k); why != "" {
		return fmt.Errorf("metadata key %s %s (the rule: %s)", quoteShort(k), why, RuleMetadata)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("the value of metadata key %q is not valid UTF-8 (the rule: %s)", k, RuleMetadata)
	}
	return nil
}

// CheckMessage checks m's ID, source and metadata against the rule, and
// returns the first problem. Decoders call it on what another producer
// sent, so that gossip never hands a handler what it could not publish.
func CheckMessage(m *Message) error {
	if err := CheckID(m.ID); err != nil {
		return err
	}
	if err := CheckSource(m.Source); err != nil {
		return err
	}
	for k, v := range m.Metadata {
		if err := CheckMetadata(k, v); err != nil {
			return err
		}
	}
	return nil
}

// nameProblem says what breaks the rule for IDs and metadata keys in s, or
// "" when nothing does.
func nameProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > MaxNameBytes:
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
