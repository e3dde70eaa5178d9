package main

import (
	"regexp"
	"strings"
)

// secretKinds are what may never appear in test output. Their names are
// printed: none may match a pattern.
var secretKinds = []struct {
	name string
	re   *regexp.Regexp
}{
	{"the test-secret marker", regexp.MustCompile(`TOPSECRET`)},
	{"a PEM private key", regexp.MustCompile(`PRIVATE KEY-----`)},
	{"an nkey seed", regexp.MustCompile(`S[UNOACPAX][A-Z2-7]{55}`)},
}

// redactor finds secrets in the lines of one output stream and masks
// them. After a PEM private key header it masks whole lines up to the
// END line: the key's base64 body matches no pattern of its own.
type redactor struct {
	inKey bool
}

// line returns text with every secret masked, and the kinds it held.
func (r *redactor) line(text string) (masked string, kinds []string) {
	masked = text
	inKey := r.inKey
	for _, k := range secretKinds {
		if k.re.MatchString(masked) {
			kinds = append(kinds, k.name)
			masked = k.re.ReplaceAllString(masked, "[secret: "+k.name+"]")
		}
	}
	if strings.Contains(text, "PRIVATE KEY-----") {
		r.inKey = !strings.Contains(text, "-----END")
		return masked, kinds
	}
	if inKey {
		if strings.Contains(text, "-----END") {
			r.inKey = false
		}
		return "[secret: a PEM private key]", append(kinds, "a PEM private key")
	}
	return masked, kinds
}
