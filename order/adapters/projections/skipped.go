package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/eventstore"
)

// Skipped counts the events of one type (and schema version) that a
// projection passed over because they are newer than the code that applied
// them. They never stall it: a projection that needs them is rebuilt with
// Replay once code that knows them runs.
type Skipped struct {
	EventType     string
	SchemaVersion int
	Events        int64
	LastEventID   string
	LastSeenAt    time.Time
}

// String is "order.OrderShipped v1: 2 events".
func (s Skipped) String() string {
	return fmt.Sprintf("%s v%d: %d events", s.EventType, s.SchemaVersion, s.Events)
}

// countSkipped queues onto b the statement that adds the events a batch
// passed over to table's counts, in the batch's transaction.
func countSkipped(b *pgx.Batch, table string, skipped []eventstore.RecordedEvent) {
	if len(skipped) == 0 {
		return
	}
	types, versions, ids := make([]string, len(skipped)), make([]int32, len(skipped)), make([]string, len(skipped))
	for i, e := range skipped {
		types[i], versions[i], ids[i] = e.Type, int32(e.SchemaVersion), e.ID
	}
	b.Queue(`INSERT INTO projection_skipped_events AS s (projection, event_type, schema_version, events, last_event_id)
		SELECT $1, t, v, count(*), (array_agg(id ORDER BY n DESC))[1]
		FROM unnest($2::text[], $3::int[], $4::uuid[]) WITH ORDINALITY AS u (t, v, id, n) GROUP BY t, v
		ON CONFLICT (projection, event_type, schema_version) DO UPDATE
		SET events = s.events + excluded.events, last_event_id = excluded.last_event_id, last_seen_at = now()`,
		table, types, versions, ids)
}

// skippedBy returns the events each projection passed over, by name.
func skippedBy(ctx context.Context, db eventstore.DB) (map[string][]Skipped, error) {
	rows, err := db.Query(ctx, `SELECT projection, event_type, schema_version, events, last_event_id::text, last_seen_at
		FROM projection_skipped_events ORDER BY projection, event_type, schema_version`)
	if err != nil {
		return nil, fmt.Errorf("read skipped events: %w", err)
	}
	defer rows.Close()
	by := map[string][]Skipped{}
	for rows.Next() {
		var name string
		var s Skipped
		if err := rows.Scan(&name, &s.EventType, &s.SchemaVersion, &s.Events, &s.LastEventID, &s.LastSeenAt); err != nil {
			return nil, fmt.Errorf("read skipped events: %w", err)
		}
		by[name] = append(by[name], s)
	}
	return by, rows.Err()
}

// resetSkipped forgets the counts of table (a rebuild starting afresh).
func resetSkipped(ctx context.Context, db eventstore.DB, table string) error {
	if _, err := db.Exec(ctx, `DELETE FROM projection_skipped_events WHERE projection = $1`, table); err != nil {
		return fmt.Errorf("reset skipped events of %s: %w", table, err)
	}
	return nil
}

// swapSkipped makes the rebuilt table's counts the live projection's, in
// the replay's swap transaction.
func swapSkipped(ctx context.Context, tx pgx.Tx, live, rebuild string) error {
	if err := resetSkipped(ctx, tx, live); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE projection_skipped_events SET projection = $1 WHERE projection = $2`, live, rebuild); err != nil {
		return fmt.Errorf("swap skipped events of %s: %w", rebuild, err)
	}
	return nil
}
