package outbox

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// LagCollector reports, on each scrape, how far a forwarder group is behind:
// events written but not yet forwarded, and the age of the oldest of them.
// It counts every event after the group's position, so events still
// invisible to the forwarder (their transaction not yet older than every
// open one) count as lag too.
func LagCollector(pool *pgxpool.Pool, group string) prometheus.Collector {
	return &lagCollector{pool: pool, group: group,
		events: prometheus.NewDesc("outbox_unforwarded_events", "Events written but not yet forwarded to Kafka.", []string{"group"}, nil),
		age:    prometheus.NewDesc("outbox_oldest_unforwarded_event_age_seconds", "Age of the oldest event not yet forwarded (0 when none).", []string{"group"}, nil),
	}
}

type lagCollector struct {
	pool        *pgxpool.Pool
	group       string
	events, age *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.events; ch <- c.age }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var count int64
	var age float64
	err := c.pool.QueryRow(ctx, `
		WITH o AS (SELECT last_processed_transaction_id AS tx, offset_acked AS pos FROM outbox_offsets WHERE consumer_group = $1)
		SELECT count(*), coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8
		FROM events
		WHERE (transaction_id, global_position) > (coalesce((SELECT tx FROM o), '0'::xid8), coalesce((SELECT pos FROM o), 0))`,
		c.group).Scan(&count, &age)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.events, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(count), c.group)
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age, c.group)
}
