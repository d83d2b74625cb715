package projections

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/metrics"
)

// LagCollector reports, on each scrape, how far each projection is behind
// the event store: events not applied yet, the age of the oldest of them,
// whether its last batch failed, and the events it passed over by type.
func LagCollector(pool *pgxpool.Pool, all []Projection) prometheus.Collector {
	events := prometheus.NewDesc("projection_lag_events", "Events stored but not yet applied to the read model.", []string{"projection"}, nil)
	age := prometheus.NewDesc("projection_lag_seconds", "Age of the oldest event not yet applied (0 when none).", []string{"projection"}, nil)
	failed := prometheus.NewDesc("projection_failing", "1 while the projection's last batch failed.", []string{"projection"}, nil)
	skipped := prometheus.NewDesc("projection_skipped_events", "Events the projection passed over because their type or schema version is newer than its code; rebuild it with `order replay` once the newer code runs.",
		[]string{"projection", "event_type", "schema_version"}, nil)
	return metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		statuses, err := Statuses(ctx, pool, all)
		for _, s := range statuses {
			failing := 0.0
			if s.LastError != "" {
				failing = 1
			}
			emit(events, float64(s.LagEvents), s.Name)
			emit(age, s.LagAge.Seconds(), s.Name)
			emit(failed, failing, s.Name)
			for _, k := range s.Skipped {
				emit(skipped, float64(k.Events), s.Name, k.EventType, strconv.Itoa(k.SchemaVersion))
			}
		}
		return err
	}, events, age, failed, skipped)
}
