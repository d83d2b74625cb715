// Package readiness holds the readiness checks of a service of this project,
// which its /readyz runs (httpserver.Ops): its PostgreSQL database answers,
// the database's migrations are applied, a Kafka broker accepts connections.
// They are apart from httpserver so that the HTTP package imports neither
// PostgreSQL nor Kafka.
package readiness

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/postgres"
)

// Checks are the readiness checks of a service with an event store and
// Kafka: PostgreSQL answers, the migrations are applied, a broker accepts
// connections.
func Checks(pool *pgxpool.Pool, brokers []string, migrations ...postgres.Migration) []httpserver.Check {
	return []httpserver.Check{
		{Name: "postgres", Check: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "migrations", Check: func(ctx context.Context) error { return postgres.Pending(ctx, pool, migrations...) }},
		{Name: "kafka", Check: func(ctx context.Context) error { return kafka.Ping(ctx, brokers) }},
	}
}
