package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector reports, on each scrape, how far each projection is behind
// the event store: events not applied yet, the age of the oldest of them,
// and whether its last batch failed.
func LagCollector(pool *pgxpool.Pool, all []Projection) prometheus.Collector {
	return &lagCollector{pool: pool, all: all,
		events: prometheus.NewDesc("projection_lag_events", "Events stored but not yet applied to the read model.", []string{"projection"}, nil),
		age:    prometheus.NewDesc("projection_lag_seconds", "Age of the oldest event not yet applied (0 when none).", []string{"projection"}, nil),
		failed: prometheus.NewDesc("projection_failing", "1 while the projection's last batch failed.", []string{"projection"}, nil),
	}
}

type lagCollector struct {
	pool                *pgxpool.Pool
	all                 []Projection
	events, age, failed *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.age
	ch <- c.failed
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	statuses, err := Statuses(ctx, c.pool, c.all)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.events, err)
		return
	}
	for _, s := range statuses {
		failing := 0.0
		if s.LastError != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(s.LagEvents), s.Name)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, s.LagAge.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, failing, s.Name)
	}
}
