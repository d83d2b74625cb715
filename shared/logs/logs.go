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
func Watermill(logger *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}
