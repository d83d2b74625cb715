package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
)

// applyEvents applies events, in order, to table in tx. Their statements,
// a few per batch rather than one per event, go to the server in one round
// trip (a pgx batch), which is what makes a replay fast. Events of a type
// this code does not know are passed over and counted (skipped.go).
func applyEvents(ctx context.Context, tx pgx.Tx, p Projection, table string, events []eventstore.RecordedEvent, earlier *folded) error {
	changes, skipped, err := changesOf(ctx, tx, events, earlier)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	// Planned on every run, as postgres.PlanEveryRun has the event
	// store's reads planned (a batch takes no exec mode per statement): an
	// update of order_summaries keeps otherwise, after five runs, a plan
	// made while the table was small, which reads all of it.
	b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
	// And planned as nested loops: each statement joins a batch's rows to
	// its table by primary key, which costs the same at any table size.
	// PostgreSQL's costs, which take a page read by key as one from disk,
	// otherwise have it hash all of order_summaries once a batch updates
	// some hundred orders: at 60,000 orders, 37 ms for an update of 500
	// that takes 13 by key, and more as the table grows.
	b.Queue(`SET LOCAL enable_hashjoin = off`)
	b.Queue(`SET LOCAL enable_mergejoin = off`)
	if len(changes) > 0 {
		p.apply(b, quote(table), changes)
	}
	countSkipped(b, table, skipped)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply events %v to %v to %s: %w", events[0].Position, events[len(events)-1].Position, table, err)
	}
	return nil
}

// changesOf returns what events did to each order they touch, in the order
// of the orders' first events, and the events it passed over because their
// type is newer than this code (adapters.Events does not know them). The
// states are folded by the aggregate itself, so that read models agree with
// it about what every event means: from the batch's own events for orders
// placed in it, else from what earlier folded of the order (and keeps
// for the next batch), else from the order's stream, loaded in one query
// for the whole batch. What earlier has of each order is taken before the
// batch keeps anything in it: keeping an order can drop another one's
// entry to make room. An order's events must follow one another without a
// gap; anything else means an event was skipped or comes twice.
//
// An unknown event changes nothing a projection shows but the order's
// version, which is the stream's; a stream without a known OrderPlaced (a
// kind of stream a newer version writes) is no order to this code.
func changesOf(ctx context.Context, tx pgx.Tx, events []eventstore.RecordedEvent, earlier *folded) ([]Change, []eventstore.RecordedEvent, error) {
	var ids, placedBefore []string
	var skipped []eventstore.RecordedEvent
	batch := map[string][]eventstore.RecordedEvent{}
	prior := map[string][]order.Event{} // what earlier folded of the orders placed before the batch
	for _, e := range events {
		stream := batch[e.StreamID]
		switch {
		case len(stream) == 0:
			ids = append(ids, e.StreamID)
			if e.StreamVersion > 1 {
				if folded, ok := earlier.upTo(e.StreamID, e.StreamVersion-1); ok {
					prior[e.StreamID] = folded
				} else {
					placedBefore = append(placedBefore, e.StreamID)
				}
			}
		case e.StreamVersion != stream[len(stream)-1].StreamVersion+1:
			return nil, nil, fmt.Errorf("event %s is version %d of %s, after version %d: an event was skipped or comes twice",
				e.ID, e.StreamVersion, e.StreamID, stream[len(stream)-1].StreamVersion)
		}
		batch[e.StreamID] = append(stream, e)
		if !adapters.Events.Knows(e) {
			skipped = append(skipped, e)
		}
	}
	var stored map[string][]eventstore.RecordedEvent
	if len(placedBefore) > 0 {
		var err error
		if stored, err = eventstore.LoadStreams(ctx, tx, placedBefore); err != nil {
			return nil, nil, err
		}
	}

	changes := make([]Change, 0, len(ids))
	for _, id := range ids {
		in := batch[id]
		first, last := in[0], in[len(in)-1]
		// The known events up to the batch's last, decoded once: those
		// before the batch's first fold into the state before it.
		folded, ok := prior[id]
		decoded, before, err := knownUpTo(id, in, folded, ok, stored[id])
		if err != nil {
			return nil, nil, err
		}
		c := Change{Event: last, Version: last.StreamVersion, VersionBefore: first.StreamVersion - 1}
		if first.StreamVersion > 1 {
			if c.Before, err = order.FromEvents(decoded[:before]); err != nil {
				return nil, nil, fmt.Errorf("fold %s before event %s: %w", id, first.ID, err)
			}
		}
		if c.After, err = order.FromEvents(decoded); err != nil {
			return nil, nil, fmt.Errorf("fold %s up to event %s: %w", id, last.ID, err)
		}
		if c.After.ID() == "" {
			continue // no order: a stream of a kind this code does not know
		}
		if c.Before != nil && c.Before.ID() == "" {
			c.Before = nil // placed by this batch, after events it passed over
		}
		changes = append(changes, c)
		earlier.keep(id, last.StreamVersion, decoded)
	}
	return changes, skipped, nil
}

// knownUpTo decodes the known events of an order up to the last of in (its
// events in the batch): those before in's first are folded if the
// projector had them (isFolded), else come from stored (the order's whole
// stream, loaded). before is how many of them come before in's first.
func knownUpTo(id string, in []eventstore.RecordedEvent, folded []order.Event, isFolded bool, stored []eventstore.RecordedEvent) (decoded []order.Event, before int, err error) {
	first, last := in[0], in[len(in)-1]
	recorded := in
	if isFolded {
		decoded, before = slices.Clip(folded), len(folded) // appending copies: folded stays as kept
	} else if first.StreamVersion > 1 {
		if int64(len(stored)) < last.StreamVersion {
			return nil, 0, fmt.Errorf("event %s is version %d of %s, which has %d events", last.ID, last.StreamVersion, id, len(stored))
		}
		recorded = stored[:last.StreamVersion]
	}
	var known []eventstore.RecordedEvent
	for _, e := range recorded {
		if !adapters.Events.Knows(e) {
			continue
		}
		if e.StreamVersion < first.StreamVersion {
			before++
		}
		known = append(known, e)
	}
	more, err := adapters.Events.DecodeAll(known)
	if err != nil {
		return nil, 0, fmt.Errorf("decode %s up to event %s: %w", id, last.ID, err)
	}
	return append(decoded, more...), before, nil
}

// rows checks that a statement applying changes changed want rows: anything
// else means an event was applied twice, or one was skipped.
func rows(changes []Change, table string, want int) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if n := tag.RowsAffected(); n != int64(want) {
			return fmt.Errorf("%s: the changes of %d orders up to event %s changed %d rows, want %d: an event was applied twice or skipped",
				table, len(changes), changes[len(changes)-1].Event.ID, n, want)
		}
		return nil
	}
}
