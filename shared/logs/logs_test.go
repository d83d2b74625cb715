package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

// Watermill's lines reach the log only at the logger's level: its info as
// debug, its trace never above debug; With keeps both the fields and the
// level.
func TestWatermillLogsAtTheLoggersLevel(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wlog := Watermill(logger).With(watermill.LogFields{"group": "g"})
	wlog.Trace("trace line", watermill.LogFields{"n": 1})
	wlog.Debug("debug line", nil)
	wlog.Info("info line", nil)
	wlog.Error("error line", nil, nil)
	got := buf.String()
	for _, want := range []string{"level=DEBUG msg=\"debug line\" group=g", "level=DEBUG msg=\"info line\"", "level=ERROR msg=\"error line\""} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "trace line") {
		t.Errorf("a trace line was logged at debug level:\n%s", got)
	}

	buf.Reset()
	logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	wlog = Watermill(logger).With(watermill.LogFields{"group": "g"})
	wlog.Debug("debug line", nil)
	wlog.Info("info line", nil)
	wlog.Error("error line", nil, nil)
	if got := buf.String(); strings.Contains(got, "info line") || strings.Contains(got, "debug line") || !strings.Contains(got, "error line") {
		t.Errorf("at warn level, logged:\n%s", got)
	}
}

// A trace line of Watermill's at LOG_LEVEL=warn, as the router and the
// Kafka subscriber log several per message; baseline: Watermill's own slog
// adapter, which converts the fields before its level check.
//
//	go test -run '^$' -bench WatermillTrace -benchmem ./shared/logs/
func BenchmarkWatermillTrace(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fields := watermill.LogFields{"message_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e", "topic": "order.events", "handler": "charge_order", "kafka_partition": 3, "kafka_offset": 12345}
	for name, wlog := range map[string]watermill.LoggerAdapter{
		"project":   Watermill(logger),
		"watermill": watermill.NewSlogLoggerWithLevelMapping(logger, watermillLevels),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				wlog.Trace("Message acked", fields)
			}
		})
	}
}
