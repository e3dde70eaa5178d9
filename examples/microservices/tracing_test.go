package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrintTreesIndentsChildrenAndShowsFailures(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	spans := []spanRecord{
		{TraceID: "t1", SpanID: "a", Service: "user_service", Name: "send x", Start: t0, End: t0.Add(ms),
			Attrs: map[string]string{"app.user.name": "Alice", "app.user.id": "u1", "messaging.destination.name": "x"}},
		{TraceID: "t1", SpanID: "b", ParentID: "a", Service: "email_service", Name: "process x", Start: t0.Add(ms), End: t0.Add(3 * ms),
			Failed: true, Error: "smtp down", Events: []string{"exception", "dead_letter"}},
		{TraceID: "t1", SpanID: "c", ParentID: "a", Service: "analytics_service", Name: "process x", Start: t0.Add(2 * ms), End: t0.Add(4 * ms)},
		{TraceID: "t1", SpanID: "d", ParentID: "zz", Service: "analytics_service", Name: "process y", Start: t0.Add(5 * ms), End: t0.Add(6 * ms)},
		{TraceID: "t2", SpanID: "e", Service: "user_service", Name: "send z", Start: t0.Add(time.Second), End: t0.Add(time.Second + ms)},
	}
	var b strings.Builder
	printTrees(&b, spans, map[string]bool{"t1": true})
	want := `trace t1  x Alice (u1)
  user_service          send x     1ms  OK
  ├─ email_service      process x  2ms  ERROR: smtp down (dead-lettered)
  └─ analytics_service  process x  2ms  OK
  analytics_service     process y  1ms  OK (parent span not exported)
`
	assert.Equal(t, want, b.String())
}

// Built without -tags otlp, an OTLP endpoint in the environment stops the
// traced demo with an error naming the tag, rather than printing trees the
// user did not ask for.
func TestOTLPWithoutTheTagSaysWhichTag(t *testing.T) {
	if otlpExporters != nil {
		t.Skip("built with -tags otlp")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	_, err := startTracing("all")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-tags otlp")
}
