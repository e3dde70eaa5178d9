package driver

import "testing"

// BenchmarkMatch measures pattern matching, which the memory transport runs
// once per (event type, subscription) before caching and wire transports run
// when they route by pattern. It must not allocate.
func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct {
		name, pattern, typ string
		want               bool
	}{
		{"exact", "user_service.user.created", "user_service.user.created", true},
		{"exact_mismatch_last", "user_service.user.created", "user_service.user.deleted", false},
		{"mismatch_first", "order_service.order.placed", "user_service.user.created", false},
		{"star", "user_service.*.created", "user_service.user.created", true},
		{"gt", "user_service.>", "user_service.user.created", true},
		{"gt_all", ">", "user_service.user.created", true},
		{"long_star", "a.b.c.d.e.f.*.h", "a.b.c.d.e.f.g.h", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Match(bc.pattern, bc.typ) != bc.want {
					b.Fatalf("Match(%q, %q) != %v", bc.pattern, bc.typ, bc.want)
				}
			}
		})
	}
}

// BenchmarkValidateType measures the check every published event goes
// through.
func BenchmarkValidateType(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateType("user_service.user.created"); err != nil {
			b.Fatal(err)
		}
	}
}
