package outbox

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/logs"
)

// Variables configure the forwarder of any service.
var Variables = envconfig.Vars{
	{Name: "FORWARDER_ENABLED", Default: "true", Usage: "run the forwarder inside `serve`"},
	{Name: "FORWARDER_POLL_INTERVAL", Default: "20ms", Usage: "how soon the forwarder reads again after finding no new events, while events are being appended (an append's notification wakes it at once)"},
	{Name: "FORWARDER_IDLE_POLL_INTERVAL", Default: "1s", Usage: "how soon an idle forwarder reads again if no notification wakes it"},
	{Name: "FORWARDER_BATCH_SIZE", Default: strconv.Itoa(DefaultBatchSize), Usage: "events the forwarder reads per query (the most it sends before waiting for Kafka's acknowledgements)"},
}

// Settings are a service's forwarder settings.
type Settings struct {
	Enabled          bool
	PollInterval     time.Duration
	IdlePollInterval time.Duration
	BatchSize        int
}

// SettingsFrom reads the forwarder Variables from vs.
func SettingsFrom(vs envconfig.Vars) (Settings, error) {
	var (
		s    Settings
		errs [4]error
	)
	s.Enabled, errs[0] = vs.Bool("FORWARDER_ENABLED")
	s.PollInterval, errs[1] = vs.Duration("FORWARDER_POLL_INTERVAL", false)
	s.IdlePollInterval, errs[2] = vs.Duration("FORWARDER_IDLE_POLL_INTERVAL", false)
	batch, err := vs.Int("FORWARDER_BATCH_SIZE", 1)
	s.BatchSize, errs[3] = int(batch), err
	return s, errors.Join(errs[:]...)
}

// Run forwards the events in pool's event store to Kafka until ctx is done;
// reg (may be nil) receives its metrics.
func Run(ctx context.Context, pool *pgxpool.Pool, brokers []string, routes []Route, s Settings, logger *slog.Logger, reg prometheus.Registerer) error {
	logger = logger.With("component", "forwarder")
	f, err := NewForwarder(ForwarderConfig{
		DB:               stdlib.OpenDBFromPool(pool),
		Brokers:          brokers,
		Routes:           routes,
		PollInterval:     s.PollInterval,
		IdlePollInterval: s.IdlePollInterval,
		BatchSize:        s.BatchSize,
		Logger:           logs.Watermill(logger),
		Metrics:          reg,
	})
	if err != nil {
		return err
	}
	logger.Info("forwarding events to Kafka", "brokers", brokers, "poll_interval", s.PollInterval, "idle_poll_interval", s.IdlePollInterval, "batch_size", s.BatchSize)
	return f.Run(ctx)
}
