package outbox

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/metrics"
)

// LagCollector reports, on each scrape, how far a forwarder group is behind:
// events written but not yet forwarded, and the age of the oldest of them.
// It is the lag query every reader of the event store shares
// (eventstore.ReaderStatuses), so events still invisible to the forwarder
// (their transaction not yet older than every open one) count as lag too.
func LagCollector(pool *pgxpool.Pool, group string) prometheus.Collector {
	events := prometheus.NewDesc("outbox_unforwarded_events", "Events written but not yet forwarded to Kafka.", []string{"group"}, nil)
	age := prometheus.NewDesc("outbox_oldest_unforwarded_event_age_seconds", "Age of the oldest event not yet forwarded (0 when none).", []string{"group"}, nil)
	return metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		statuses, err := eventstore.ReaderStatuses(ctx, pool, group)
		for _, s := range statuses {
			emit(events, float64(s.LagEvents), group)
			emit(age, s.LagAge.Seconds(), group)
		}
		return err
	}, events, age)
}
