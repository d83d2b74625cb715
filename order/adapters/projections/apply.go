package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
)

// applyEvents applies events, in order, to table in tx. Their statements go
// to the server in one round trip (a pgx batch), which is what makes a
// replay fast.
func applyEvents(ctx context.Context, tx pgx.Tx, p Projection, table string, events []eventstore.RecordedEvent) error {
	changes, err := changesOf(ctx, tx, events)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, c := range changes {
		p.apply(b, quote(table), c)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply events %v to %v to %s: %w", events[0].Position, events[len(events)-1].Position, table, err)
	}
	return nil
}

// changesOf pairs each event with the order before and after it. The states
// are folded by the aggregate itself from the order's stream, loaded once
// for the whole batch, so that read models agree with the aggregate about
// what every event means.
func changesOf(ctx context.Context, tx pgx.Tx, events []eventstore.RecordedEvent) ([]Change, error) {
	var streamIDs []string
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.StreamID] {
			seen[e.StreamID] = true
			streamIDs = append(streamIDs, e.StreamID)
		}
	}
	stored, err := eventstore.LoadStreams(ctx, tx, streamIDs)
	if err != nil {
		return nil, err
	}
	streams := make(map[string][]order.Event, len(stored))
	for id, recorded := range stored {
		decoded := make([]order.Event, len(recorded))
		for i, e := range recorded {
			if decoded[i], err = adapters.Events.Decode(e); err != nil {
				return nil, err
			}
		}
		streams[id] = decoded
	}

	changes := make([]Change, len(events))
	for i, e := range events {
		stream := streams[e.StreamID]
		if int64(len(stream)) < e.StreamVersion {
			return nil, fmt.Errorf("event %s is version %d of %s, which has %d events", e.ID, e.StreamVersion, e.StreamID, len(stream))
		}
		c := Change{Event: e}
		if e.StreamVersion > 1 {
			if c.Before, err = order.FromEvents(stream[:e.StreamVersion-1]); err != nil {
				return nil, fmt.Errorf("fold %s before event %s: %w", e.StreamID, e.ID, err)
			}
		}
		if c.After, err = order.FromEvents(stream[:e.StreamVersion]); err != nil {
			return nil, fmt.Errorf("fold %s up to event %s: %w", e.StreamID, e.ID, err)
		}
		changes[i] = c
	}
	return changes, nil
}

// oneRow checks that a statement applying c changed exactly one row:
// anything else means an event was applied twice, or one was skipped.
func oneRow(c Change, table string) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if n := tag.RowsAffected(); n != 1 {
			return fmt.Errorf("%s: event %s (%s, version %d of %s) changed %d rows, want 1: an event was applied twice or skipped",
				table, c.Event.ID, c.Event.Type, c.Event.StreamVersion, c.Event.StreamID, n)
		}
		return nil
	}
}
