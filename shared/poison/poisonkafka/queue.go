package poisonkafka

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// NewQueue returns a service's poison queue as both services run it: kept
// in pool's database (poisonstore), requeued to brokers by a publisher named
// clientID. Close the publisher when done with the queue.
func NewQueue(pool *pgxpool.Pool, brokers []string, clientID string, logger *slog.Logger) (*poisonapp.Queue, *RequeuePublisher) {
	requeuer := NewRequeuePublisher(brokers, clientID)
	return poisonapp.NewQueue(poisonstore.NewStore(pool), requeuer, logger), requeuer
}
