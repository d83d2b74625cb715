package outbox

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/metrics"
)

// LagCollector reports, on each scrape, how far a forwarder group is behind:
// events written but not yet forwarded, and the age of the oldest of them.
// It counts every event after the group's position, so events still
// invisible to the forwarder (their transaction not yet older than every
// open one) count as lag too.
func LagCollector(pool *pgxpool.Pool, group string) prometheus.Collector {
	events := prometheus.NewDesc("outbox_unforwarded_events", "Events written but not yet forwarded to Kafka.", []string{"group"}, nil)
	age := prometheus.NewDesc("outbox_oldest_unforwarded_event_age_seconds", "Age of the oldest event not yet forwarded (0 when none).", []string{"group"}, nil)
	return metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		var count int64
		var oldest float64
		err := pool.QueryRow(ctx, `
			WITH o AS (SELECT last_processed_transaction_id AS tx, offset_acked AS pos FROM outbox_offsets WHERE consumer_group = $1)
			SELECT count(*), coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8
			FROM events
			WHERE (transaction_id, global_position) > (coalesce((SELECT tx FROM o), '0'::xid8), coalesce((SELECT pos FROM o), 0))`,
			group).Scan(&count, &oldest)
		emit(events, float64(count), group)
		emit(age, oldest, group)
		return err
	}, events, age)
}
