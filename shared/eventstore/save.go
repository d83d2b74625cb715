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

// Aggregate is an event-sourced aggregate as its repository sees it: the
// events recorded since it was loaded, the stream version they follow, and
// a way to tell it they are stored.
type Aggregate[E DomainEvent] interface {
	Changes() []E
	OriginalVersion() int64
	MarkCommitted()
}

// Commit appends the aggregate's changes to its stream (Save) and marks
// them committed, so the same aggregate can take the next command without
// being loaded again. With no changes it does nothing. It returns an error
// wrapping ErrVersionConflict if the stream is no longer at the version
// the changes follow.
func Commit[E DomainEvent](ctx context.Context, db Beginner, streamID string, a Aggregate[E], origin Context) error {
	if len(a.Changes()) == 0 {
		return nil
	}
	if err := Save(ctx, db, streamID, a.OriginalVersion(), origin, a.Changes()); err != nil {
		return err
	}
	a.MarkCommitted()
	return nil
}
