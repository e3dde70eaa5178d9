package main

// The -trace mode: every service's bus is traced and measured with
// OpenTelemetry (middleware.Tracing and middleware.Metrics), each service
// under its own service.name.
//
//   - One process (-service all): spans are recorded in memory and, at the
//     end, printed as one indented tree per trace.
//   - One process per service (-service X): each process appends its spans
//     as JSON lines to a file of its own in -trace-dir; at the end it prints
//     the traces it took part in, assembled from every file there, so the
//     last process to finish prints the whole chain. -print-traces DIR
//     prints every trace in DIR at any time.
//   - With OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
//     set, spans and metrics go to that OTLP/HTTP collector (Jaeger, Tempo,
//     the OpenTelemetry Collector) instead. The exporters are built only
//     with -tags otlp (otlp.go): the demo on its own does not link them.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

var (
	traceDir    = flag.String("trace-dir", filepath.Join(os.TempDir(), "gossip-traces"), "with -trace and -service: the directory each process writes its spans to (JSON lines)")
	printTraces = flag.String("print-traces", "", "print the traces the processes wrote to this directory (see -trace-dir) as trees, and exit")
)

// otlpExporters makes the OTLP/HTTP span and metric exporters; nil unless
// built with -tags otlp.
var otlpExporters func(context.Context) (sdktrace.SpanExporter, sdkmetric.Exporter, error)

// tracing is the -trace mode. A nil *tracing does nothing.
type tracing struct {
	otlp     bool // export to an OTLP collector instead of printing
	recorder *tracetest.SpanRecorder
	file     *spanFile // multi-process: this process's spans
	dir      string

	mu     sync.Mutex
	tps    []*sdktrace.TracerProvider
	mps    []*sdkmetric.MeterProvider
	meters map[string]*sdkmetric.ManualReader // service → reader (not with OTLP)
}

// startTracing sets up the -trace mode for service ("all" or one service).
// With -print-traces it prints the traces in that directory and returns a
// nil *tracing: there is nothing else to run.
func startTracing(service string) (*tracing, error) {
	if *printTraces != "" {
		return nil, printDir(*printTraces, nil)
	}
	t := &tracing{meters: map[string]*sdkmetric.ManualReader{}}
	switch {
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		if otlpExporters == nil {
			return nil, errors.New("OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporters are built only with -tags otlp: " +
				"go run -tags otlp ./examples/microservices -trace")
		}
		t.otlp = true
	case service == "all":
		t.recorder = tracetest.NewSpanRecorder()
	default:
		t.dir = *traceDir
		if err := os.MkdirAll(t.dir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(filepath.Join(t.dir, fmt.Sprintf("%s-%d.jsonl", service, os.Getpid())))
		if err != nil {
			return nil, err
		}
		t.file = &spanFile{f: f, w: bufio.NewWriter(f)}
	}
	return t, nil
}

// install traces and measures a service's bus, under the service's name.
func (t *tracing) install(b *gossip.EventBus, service string) {
	if t == nil {
		return
	}
	res := resource.NewSchemaless(semconv.ServiceName(service))
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	var reader sdkmetric.Reader
	switch {
	case t.otlp:
		// The exporters read the OTEL_EXPORTER_OTLP_* variables themselves.
		spans, metrics, err := otlpExporters(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "OTLP exporters:", err)
		}
		if spans != nil {
			topts = append(topts, sdktrace.WithBatcher(spans))
		}
		if metrics != nil {
			reader = sdkmetric.NewPeriodicReader(metrics)
		}
	case t.recorder != nil:
		topts = append(topts, sdktrace.WithSpanProcessor(t.recorder))
	default:
		topts = append(topts, sdktrace.WithSyncer(t.file))
	}
	if reader == nil {
		mr := sdkmetric.NewManualReader()
		t.mu.Lock()
		t.meters[service] = mr
		t.mu.Unlock()
		reader = mr
	}
	tp := sdktrace.NewTracerProvider(topts...)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
	t.mu.Lock()
	t.tps = append(t.tps, tp)
	t.mps = append(t.mps, mp)
	t.mu.Unlock()

	// Tracing first: its spans cover the rest, and logs carry the trace.
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(b)
	middleware.Metrics(middleware.WithMeterProvider(mp)).Install(b)
	b.UsePublish(nameUser)
}

// nameUser is how an application adds its own attributes: it names the
// user on the span of each user event, so the printed trees say whose is
// whose. It runs inside the tracing middleware, whose span is in ctx.
func nameUser(next gossip.PublishFunc) gossip.PublishFunc {
	return func(ctx context.Context, events []*gossip.Event) error {
		span := trace.SpanFromContext(ctx)
		for _, e := range events {
			switch d := e.Data.(type) {
			case UserCreatedEvent:
				span.SetAttributes(attribute.String("app.user.id", d.UserID), attribute.String("app.user.name", d.Name))
			case UserUpdatedEvent:
				span.SetAttributes(attribute.String("app.user.id", d.UserID))
			}
		}
		return next(ctx, events)
	}
}

// finish stops the buses (so that every handler's span has ended), flushes
// the spans and metrics, and prints the traces (and a line of metrics per
// service), or says where they went.
func (t *tracing) finish(buses map[string]*gossip.EventBus) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, b := range buses {
		errs = append(errs, b.Shutdown(ctx))
	}
	// Metrics from the manual readers, before the providers shut down.
	var summary []string
	for service, r := range t.meters {
		var rm metricdata.ResourceMetrics
		if err := r.Collect(ctx, &rm); err == nil {
			summary = append(summary, metricsLine(service, rm))
		}
	}
	slices.Sort(summary)
	for _, tp := range t.tps {
		errs = append(errs, tp.Shutdown(ctx))
	}
	for _, mp := range t.mps {
		errs = append(errs, mp.Shutdown(ctx))
	}
	switch {
	case t.otlp:
		fmt.Println("\nspans and metrics exported over OTLP/HTTP to", cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
	case t.recorder != nil:
		fmt.Println()
		printTrees(os.Stdout, spanRecords(t.recorder.Ended()), nil)
	default:
		errs = append(errs, t.file.Close())
		fmt.Printf("\nspans written to %s\n", t.file.f.Name())
		// The traces this process took part in, from every process's file.
		mine := map[string]bool{}
		for _, id := range t.file.traceIDs() {
			mine[id] = true
		}
		errs = append(errs, printDir(t.dir, mine))
	}
	if len(summary) > 0 {
		fmt.Println("\nmetrics:")
		for _, l := range summary {
			fmt.Println(l)
		}
	}
	return errors.Join(errs...)
}

// metricsLine sums a service's counters into one line.
func metricsLine(service string, rm metricdata.ResourceMetrics) string {
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					sums[m.Name] += dp.Value
				}
			}
		}
	}
	return fmt.Sprintf("  %-22s sent %d, consumed %d, failures %d, retries %d, dead-lettered %d", service,
		sums[middleware.MetricSentMessages], sums[middleware.MetricConsumedMessages],
		sums[middleware.MetricHandlerFailures], sums[middleware.MetricHandlerRetries], sums[middleware.MetricDeadLettered])
}

// spanRecord is one finished span as the tree printer needs it, and as the
// processes write it to their files, one JSON object per line.
type spanRecord struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_span_id,omitempty"`
	Service  string            `json:"service"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Error    string            `json:"error,omitempty"` // the status description of a failed span
	Failed   bool              `json:"failed,omitempty"`
	Events   []string          `json:"events,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"`
}

func spanRecords(spans []sdktrace.ReadOnlySpan) []spanRecord {
	out := make([]spanRecord, 0, len(spans))
	for _, s := range spans {
		r := spanRecord{
			TraceID: s.SpanContext().TraceID().String(),
			SpanID:  s.SpanContext().SpanID().String(),
			Name:    s.Name(),
			Kind:    s.SpanKind().String(),
			Start:   s.StartTime(),
			End:     s.EndTime(),
			Attrs:   map[string]string{},
		}
		if s.Parent().IsValid() {
			r.ParentID = s.Parent().SpanID().String()
		}
		if v, ok := s.Resource().Set().Value(semconv.ServiceNameKey); ok {
			r.Service = v.AsString()
		}
		if s.Status().Code == codes.Error {
			r.Failed, r.Error = true, s.Status().Description
		}
		for _, ev := range s.Events() {
			r.Events = append(r.Events, ev.Name)
		}
		for _, kv := range s.Attributes() {
			r.Attrs[string(kv.Key)] = kv.Value.String()
		}
		out = append(out, r)
	}
	return out
}

// spanFile is a SpanExporter that appends spans to a file as JSON lines.
type spanFile struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	ids []string // trace IDs written, in order
}

func (s *spanFile) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := json.NewEncoder(s.w)
	for _, r := range spanRecords(spans) {
		if err := enc.Encode(r); err != nil {
			return err
		}
		s.ids = append(s.ids, r.TraceID)
	}
	return s.w.Flush()
}

func (s *spanFile) Shutdown(context.Context) error { return nil }

func (s *spanFile) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.w.Flush(), s.f.Close())
}

func (s *spanFile) traceIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// printDir prints the traces in the span files of dir as trees: all of
// them, or those whose IDs only names.
func printDir(dir string, only map[string]bool) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no span files (*.jsonl) in %s", dir)
	}
	var spans []spanRecord
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r spanRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", name, err)
			}
			spans = append(spans, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	fmt.Printf("traces assembled from %d span file(s) in %s\n\n", len(files), dir)
	printTrees(os.Stdout, spans, only)
	return nil
}

// printTrees prints the traces among spans (all, or those only names) as
// indented trees, oldest trace first: per span the service, the span name,
// the duration and the status.
func printTrees(w io.Writer, spans []spanRecord, only map[string]bool) {
	traces := map[string][]spanRecord{}
	for _, s := range spans {
		if only == nil || only[s.TraceID] {
			traces[s.TraceID] = append(traces[s.TraceID], s)
		}
	}
	ids := make([]string, 0, len(traces))
	for id, ss := range traces {
		slices.SortFunc(ss, func(a, b spanRecord) int { return a.Start.Compare(b.Start) })
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return traces[a][0].Start.Compare(traces[b][0].Start) })
	if len(ids) == 0 {
		fmt.Fprintln(w, "no traces")
	}
	for i, id := range ids {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printTree(w, id, traces[id])
	}
}

type treeRow struct{ left, name, dur, status string }

func printTree(w io.Writer, id string, spans []spanRecord) {
	byID := map[string]bool{}
	for _, s := range spans {
		byID[s.SpanID] = true
	}
	children := map[string][]spanRecord{}
	var roots []spanRecord
	for _, s := range spans {
		if s.ParentID != "" && byID[s.ParentID] {
			children[s.ParentID] = append(children[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	title := "trace " + id
	if r := roots[0]; r.Attrs["app.user.name"] != "" {
		title += fmt.Sprintf("  %s %s (%s)", r.Attrs["messaging.destination.name"], r.Attrs["app.user.name"], r.Attrs["app.user.id"])
	} else if r.Attrs["app.user.id"] != "" {
		title += fmt.Sprintf("  %s (%s)", r.Attrs["messaging.destination.name"], r.Attrs["app.user.id"])
	}
	fmt.Fprintln(w, title)

	var rows []treeRow
	var walk func(s spanRecord, prefix, branch string)
	walk = func(s spanRecord, prefix, branch string) {
		status := "OK"
		if s.Failed {
			status = "ERROR"
			if s.Error != "" {
				status += ": " + truncate(s.Error, 60)
			}
		}
		if slices.Contains(s.Events, "dead_letter") {
			status += " (dead-lettered)"
		}
		left := prefix + branch + s.Service
		if s.ParentID != "" && !byID[s.ParentID] {
			status += " (parent span not exported)"
		}
		rows = append(rows, treeRow{left, s.Name, s.End.Sub(s.Start).Round(time.Microsecond).String(), status})
		kids := children[s.SpanID]
		next := prefix
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, c := range kids {
			b := "├─ "
			if i == len(kids)-1 {
				b = "└─ "
			}
			walk(c, next, b)
		}
	}
	for _, r := range roots {
		walk(r, "  ", "")
	}
	var wl, wn, wd int
	for _, r := range rows {
		wl = max(wl, utf8.RuneCountInString(r.left))
		wn = max(wn, len(r.name))
		wd = max(wd, len(r.dur))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s%s  %-*s  %*s  %s\n", r.left, strings.Repeat(" ", wl-utf8.RuneCountInString(r.left)), wn, r.name, wd, r.dur, r.status)
	}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
