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

// Save encodes an aggregate's new events, each with a new event id, and
// appends them, all or none. It returns an error wrapping
// ErrVersionConflict if the stream is no longer at expectedVersion.
//
// db is a pool or a connection (or a transaction, as SaveTx). The append is
// one statement (Append), so it needs no transaction of its own: on a pool
// it commits as one statement's implicit transaction, all of its rows or
// none, the version check included. Wrapping it in BEGIN and COMMIT would
// cost two more round trips to the server per command and change nothing.
func Save[E DomainEvent](ctx context.Context, db DB, streamID string, expectedVersion int64, origin Context, changes []E) error {
	events, err := encode(changes)
	if err != nil {
		return err
	}
	return Append(ctx, db, streamID, expectedVersion, origin, events...)
}

// encode gives each change a new event id and its JSON encoding.
func encode[E DomainEvent](changes []E) ([]Event, error) {
	events := make([]Event, len(changes))
	for i, c := range changes {
		payload, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("eventstore: encode %s: %w", c.EventType(), err)
		}
		events[i] = Event{ID: uuid.NewString(), Type: c.EventType(), SchemaVersion: c.SchemaVersion(), Payload: payload}
	}
	return events, nil
}

// SaveTx is Save in the caller's transaction, for commands that change
// something else in the same transaction.
func SaveTx[E DomainEvent](ctx context.Context, tx pgx.Tx, streamID string, expectedVersion int64, origin Context, changes []E) error {
	return Save(ctx, tx, streamID, expectedVersion, origin, changes)
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
//
// Within work started on a GroupCommit (GroupCommit.Start: a consumer's
// attempt at a message), the changes join that group instead and Commit
// returns once the group is stored, with the error of this append alone:
// the caller sees no difference but one transaction for many commands.
func Commit[E DomainEvent](ctx context.Context, db DB, streamID string, a Aggregate[E], origin Context) error {
	if len(a.Changes()) == 0 {
		return nil
	}
	if g := groupFrom(ctx); g != nil {
		events, err := encode(a.Changes())
		if err != nil {
			return err
		}
		if err := g.append(ctx, streamAppend{streamID, a.OriginalVersion(), origin, events}); err != nil {
			return err
		}
	} else if err := Save(ctx, db, streamID, a.OriginalVersion(), origin, a.Changes()); err != nil {
		return err
	}
	a.MarkCommitted()
	return nil
}
