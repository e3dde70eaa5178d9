package cloudevents

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// appendString writes what encoding/json writes for a string without HTML
// escaping: byte for byte for valid UTF-8; for other bytes, a JSON string
// that decodes to what encoding/json's does (each invalid byte U+FFFD,
// which encoding/json writes as \ufffd, and as the character itself when
// built with GOEXPERIMENT=jsonv2).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "\x00\x1f\n\r\t\x7f", "<b>&", "caf\xe9 \xff", "\u2028\u2029", "ид ✓ 世界", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if utf8.ValidString(s) {
			if string(got)+"\n" != want.String() {
				t.Fatalf("appendString(%q) = %s, encoding/json writes %s", s, got, want.Bytes())
			}
			return
		}
		if !utf8.Valid(got) {
			t.Fatalf("appendString(%q) = %q, not UTF-8", s, got)
		}
		var gotS, wantS string
		if err := json.Unmarshal(got, &gotS); err != nil {
			t.Fatalf("appendString(%q) = %s, not a JSON string: %v", s, got, err)
		}
		if err := json.Unmarshal(want.Bytes(), &wantS); err != nil {
			t.Fatal(err)
		}
		if gotS != wantS {
			t.Fatalf("appendString(%q) = %s (%q), encoding/json writes %s (%q)", s, got, gotS, want.Bytes(), wantS)
		}
	})
}
