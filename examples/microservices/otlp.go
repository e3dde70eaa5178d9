//go:build otlp

package main

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func init() { otlpExporters = newOTLPExporters }

// newOTLPExporters returns the OTLP/HTTP exporters, configured by the
// OTEL_EXPORTER_OTLP_* variables; one that cannot be made is nil, and its
// error is returned.
func newOTLPExporters(ctx context.Context) (sdktrace.SpanExporter, sdkmetric.Exporter, error) {
	spans, serr := otlptracehttp.New(ctx)
	metrics, merr := otlpmetrichttp.New(ctx)
	var s sdktrace.SpanExporter
	if serr == nil {
		s = spans
	}
	var m sdkmetric.Exporter
	if merr == nil {
		m = metrics
	}
	return s, m, errors.Join(serr, merr)
}
