// Package logs sets up log/slog for the services and adapts it for Watermill.
package logs

import (
	"context"
	"log/slog"
	"os"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"

	"github.com/es-outbox/reference/shared/tracing"
)

// New returns a logger writing to stderr: text on a terminal, JSON otherwise.
// level is debug, info, warn or error (LOG_LEVEL, which config.Vars.Service
// checks), in any case, as slog.Level reads it; anything else means info.
func New(service, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if term.IsTerminal(int(os.Stderr.Fd())) {
		h = slog.NewTextHandler(os.Stderr, opts)
	} else {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(contextHandler{h}).With("service", service)
}

// contextHandler adds the trace id and the correlation id of the request or
// message being handled (from the context passed to InfoContext and
// friends) to every line, so the logs of one order can be found across
// services and joined to its trace.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if id := tracing.CorrelationID(ctx); id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// Watermill adapts logger for Watermill. Watermill's info logs are chatty
// (one line per subscription step), so they are logged at debug level.
// Lines below the logger's level are dropped before Watermill's fields are
// converted: Watermill's own slog adapter converts them first, on several
// trace lines per message handled, at any level (6% of the payment
// service's CPU at 200 orders/s, for nothing, at LOG_LEVEL=warn).
func Watermill(logger *slog.Logger) watermill.LoggerAdapter {
	return enabledOnly{watermill.NewSlogLoggerWithLevelMapping(logger, watermillLevels), logger}
}

// watermillLevels maps Watermill's levels onto the logger's.
var watermillLevels = map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}

// enabledOnly passes on to the adapter only what logger would write.
type enabledOnly struct {
	watermill.LoggerAdapter
	logger *slog.Logger
}

func (e enabledOnly) enabled(level slog.Level) bool {
	if mapped, ok := watermillLevels[level]; ok {
		level = mapped
	}
	return e.logger.Enabled(context.Background(), level)
}

func (e enabledOnly) Error(msg string, err error, fields watermill.LogFields) {
	if e.enabled(slog.LevelError) {
		e.LoggerAdapter.Error(msg, err, fields)
	}
}

func (e enabledOnly) Info(msg string, fields watermill.LogFields) {
	if e.enabled(slog.LevelInfo) {
		e.LoggerAdapter.Info(msg, fields)
	}
}

func (e enabledOnly) Debug(msg string, fields watermill.LogFields) {
	if e.enabled(slog.LevelDebug) {
		e.LoggerAdapter.Debug(msg, fields)
	}
}

func (e enabledOnly) Trace(msg string, fields watermill.LogFields) {
	if e.enabled(watermill.LevelTrace) {
		e.LoggerAdapter.Trace(msg, fields)
	}
}

func (e enabledOnly) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return enabledOnly{e.LoggerAdapter.With(fields), e.logger}
}
