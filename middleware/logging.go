package middleware

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
)

// LoggingOption configures Logging.
type LoggingOption func(*loggingConfig)

type loggingConfig struct {
	success, failure slog.Level
	metadata         []string
}

// SuccessLevel sets the level of the line logged for a handled event
// (default slog.LevelDebug).
func SuccessLevel(l slog.Level) LoggingOption {
	return func(c *loggingConfig) { c.success = l }
}

// FailureLevel sets the level of the line logged when the handler returns an
// error the bus will retry (default slog.LevelWarn). Permanent errors and
// panics are always logged at slog.LevelError.
func FailureLevel(l slog.Level) LoggingOption {
	return func(c *loggingConfig) { c.failure = l }
}

// LogMetadata adds the named metadata keys to every line, as attributes
// "metadata.<key>" (absent keys are left out). Nothing else from the
// metadata is logged, so list only keys that never hold secrets.
func LogMetadata(keys ...string) LoggingOption {
	return func(c *loggingConfig) { c.metadata = append(c.metadata, keys...) }
}

// Logging returns middleware that logs one line per handled event on logger
// (slog.Default() when nil): "gossip: event handled" at Debug level on
// success, "gossip: handler failed" at Warn level on an error, or at Error
// level on a permanent error or a *gossip.PanicError. Attributes: id, type,
// source, attempt, group, correlation_id (Event.CorrelationID), causation_id
// (Event.CausationID, when the event has one), duration, error (on
// failure) and, when ctx carries
// a valid OpenTelemetry span context, trace_id and span_id. The payload and
// the metadata are not logged (see LogMetadata).
//
// Put Logging outside Recovery so that panics are logged as errors.
func Logging(logger *slog.Logger, opts ...LoggingOption) gossip.Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	cfg := loggingConfig{success: slog.LevelDebug, failure: slog.LevelWarn}
	for _, o := range opts {
		o(&cfg)
	}
	metaAttrs := make([]string, len(cfg.metadata))
	for i, k := range cfg.metadata {
		metaAttrs[i] = "metadata." + k
	}
	return func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			start := time.Now()
			err := h(ctx, e)
			level, msg := cfg.success, "gossip: event handled"
			if err != nil {
				level, msg = cfg.failure, "gossip: handler failed"
				var pe *gossip.PanicError
				if gossip.IsPermanent(err) || errors.As(err, &pe) {
					level = slog.LevelError
				}
			}
			if !logger.Enabled(ctx, level) {
				return err
			}
			attrs := make([]slog.Attr, 0, 12+len(cfg.metadata))
			attrs = append(attrs,
				slog.String("id", e.ID),
				slog.String("type", string(e.Type)),
				slog.String("source", e.Source),
				slog.Int("attempt", e.Attempt()),
				slog.String("group", e.Group()),
				slog.String("correlation_id", e.CorrelationID()),
				slog.Duration("duration", time.Since(start)),
			)
			if c := e.CausationID(); c != "" {
				attrs = append(attrs, slog.String("causation_id", c))
			}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				attrs = append(attrs,
					slog.String("trace_id", sc.TraceID().String()),
					slog.String("span_id", sc.SpanID().String()))
			}
			for i, k := range cfg.metadata {
				if v, ok := e.Metadata[k]; ok {
					attrs = append(attrs, slog.String(metaAttrs[i], v))
				}
			}
			logger.LogAttrs(ctx, level, msg, attrs...)
			return err
		}
	}
}
