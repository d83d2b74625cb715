package eventstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DomainEvent is an aggregate's event that knows its stable type name and
// schema version; it is stored as its JSON encoding.
type DomainEvent interface {
	EventType() string
	SchemaVersion() int
}

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Save encodes an aggregate's new events, each with a new event id, and
// appends them in one transaction. It returns an error wrapping
// ErrVersionConflict if the stream is no longer at expectedVersion.
func Save[E DomainEvent](ctx context.Context, db Beginner, streamID string, expectedVersion int64, origin Context, changes []E) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		return SaveTx(ctx, tx, streamID, expectedVersion, origin, changes)
	})
}

// SaveTx is Save in the caller's transaction, for commands that change
// something else in the same transaction.
func SaveTx[E DomainEvent](ctx context.Context, tx pgx.Tx, streamID string, expectedVersion int64, origin Context, changes []E) error {
	events := make([]Event, len(changes))
	for i, c := range changes {
		payload, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("eventstore: encode %s: %w", c.EventType(), err)
		}
		events[i] = Event{ID: uuid.NewString(), Type: c.EventType(), SchemaVersion: c.SchemaVersion(), Payload: payload}
	}
	return Append(ctx, tx, streamID, expectedVersion, origin, events...)
}
