package poisonkafka

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// NewQueue returns a service's poison queue as both services run it: kept
// in pool's database (poisonstore), requeued to brokers by a publisher named
// clientID. closeQueue closes the publisher (logging a failure); the pool
// stays the caller's.
func NewQueue(pool *pgxpool.Pool, brokers []string, clientID string, logger *slog.Logger) (queue *poisonapp.Queue, closeQueue func()) {
	requeuer := NewRequeuePublisher(brokers, clientID)
	closeQueue = func() {
		if err := requeuer.Close(); err != nil {
			logger.Warn("closing the requeue producer failed", "err", err)
		}
	}
	return poisonapp.NewQueue(poisonstore.NewStore(pool), requeuer, logger), closeQueue
}
