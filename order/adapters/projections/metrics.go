package projections

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/metrics"
)

// LagCollector reports, on each scrape, how far each projection is behind
// the event store: events not applied yet, the age of the oldest of them,
// and whether its last batch failed.
func LagCollector(pool *pgxpool.Pool, all []Projection) prometheus.Collector {
	events := prometheus.NewDesc("projection_lag_events", "Events stored but not yet applied to the read model.", []string{"projection"}, nil)
	age := prometheus.NewDesc("projection_lag_seconds", "Age of the oldest event not yet applied (0 when none).", []string{"projection"}, nil)
	failed := prometheus.NewDesc("projection_failing", "1 while the projection's last batch failed.", []string{"projection"}, nil)
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
		}
		return err
	}, events, age, failed)
}
