// Package logs sets up log/slog for the services and adapts it for Watermill.
package logs

import (
	"log/slog"
	"os"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"golang.org/x/term"
)

// New returns a logger writing to stderr: text on a terminal, JSON otherwise.
// level is debug, info, warn or error (LOG_LEVEL); anything else means info.
func New(service, level string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: parseLevel(level)}
	var h slog.Handler
	if term.IsTerminal(int(os.Stderr.Fd())) {
		h = slog.NewTextHandler(os.Stderr, opts)
	} else {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("service", service)
}

// Watermill adapts logger for Watermill. Watermill's info logs are chatty
// (one line per subscription step), so they are logged at debug level.
func Watermill(logger *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}

func parseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
