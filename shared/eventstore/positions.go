package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Every reader of the event store keeps its position in one table,
// reader_positions (migration 00003): each forwarder's consumer group (the
// outbox) and each projection of the order service. A reader's name is its
// key, so forwarder groups and projections share one namespace ("forwarder",
// "order_summaries", ...). A position is that of the last event the reader
// has done with, in commit order; readers differ only in how they move it:
// the forwarder once Kafka acknowledged every event up to it (see
// shared/outbox), a projection in the same transaction as the rows it wrote.

// PositionsTable is the table of the readers' positions.
const PositionsTable = "reader_positions"

// visible is the commit-order visibility rule, the one place it is
// written: a reader only sees events whose transaction is older than every
// transaction still open anywhere on the server. Positions are taken at
// insert but become visible at commit, so without it a reader could pass a
// position whose event commits later, and skip it.
const visible = `transaction_id < pg_snapshot_xmin(pg_current_snapshot())`

// NotYetVisible is the SQL condition on a row of events that no reader can
// see yet (the opposite of the visibility rule above).
const NotYetVisible = `NOT (` + visible + `)`

// CommitOrderQuery returns the query that reads the next events after a
// position in commit order: the events columns named by columns, after the
// SQL row (transaction id as xid8, global position) given as after, at most
// limit (an SQL expression). It keeps to the visibility rule, and its keyset
// condition makes each batch cost the same on any backlog (the index
// events_transaction_position_idx). Every reader reads events through it,
// planned on every run (postgres.PlanEveryRun).
func CommitOrderQuery(columns, after, limit string) string {
	return `SELECT ` + columns + ` FROM events
		WHERE (transaction_id, global_position) > ` + after + `
		  AND ` + visible + `
		ORDER BY transaction_id, global_position
		LIMIT ` + limit
}

// ReaderStatus is where a reader is and how far behind the event store.
type ReaderStatus struct {
	Reader string
	// Position is that of the last event the reader is done with;
	// Start if it has none.
	Position Position
	// UpdatedAt is when the position last moved; zero if it never has.
	UpdatedAt time.Time
	// LagEvents counts the stored events after the position, those not
	// yet visible included: a transaction held open shows as lag.
	LagEvents int64
	// LagAge is how long ago the oldest of them was recorded.
	LagAge time.Duration
	// LastError says why the reader's last batch failed, unless one
	// succeeded since (readers that record their failures).
	LastError   string
	LastErrorAt time.Time
}

// ReaderStatuses returns the status of each named reader, one query each:
// the lag query of every reader (the forwarders' and the projections'
// metrics, `order projections`, the console).
func ReaderStatuses(ctx context.Context, db DB, readers ...string) ([]ReaderStatus, error) {
	statuses := make([]ReaderStatus, len(readers))
	for i, name := range readers {
		s := ReaderStatus{Reader: name}
		var txID string
		var lastError *string
		var updatedAt, lastErrorAt *time.Time
		var lagSeconds float64
		err := db.QueryRow(ctx, `
			SELECT p.transaction_id::text, p.global_position,
			       -- RecordReaderError creates the row of a reader whose first
			       -- batch failed; its updated_at is then the insert's, not a move.
			       CASE WHEN p.global_position > 0 THEN r.updated_at END, r.last_error, r.last_error_at,
			       lag.events, coalesce(extract(epoch FROM now() - lag.oldest), 0)::float8
			FROM (SELECT $1::text AS reader) AS n
			LEFT JOIN `+PositionsTable+` r USING (reader)
			CROSS JOIN LATERAL (
				SELECT coalesce(r.transaction_id, '0') AS transaction_id, coalesce(r.global_position, 0) AS global_position
			) AS p
			CROSS JOIN LATERAL (
				SELECT count(*) AS events, min(e.recorded_at) AS oldest FROM events e
				WHERE (e.transaction_id, e.global_position) > (p.transaction_id, p.global_position)
			) AS lag`, name,
		).Scan(&txID, &s.Position.GlobalPosition, &updatedAt, &lastError, &lastErrorAt, &s.LagEvents, &lagSeconds)
		if err == nil {
			s.Position.TransactionID, err = strconv.ParseUint(txID, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("eventstore: status of reader %s: %w", name, err)
		}
		s.LagAge = time.Duration(lagSeconds * float64(time.Second))
		if updatedAt != nil {
			s.UpdatedAt = *updatedAt
		}
		if lastError != nil {
			s.LastError, s.LastErrorAt = *lastError, *lastErrorAt
		}
		statuses[i] = s
	}
	return statuses, nil
}

// ReaderPosition returns the reader's position, or Start.
func ReaderPosition(ctx context.Context, db DB, reader string) (Position, error) {
	var txID string
	var pos Position
	err := db.QueryRow(ctx, `SELECT transaction_id::text, global_position FROM `+PositionsTable+` WHERE reader = $1`, reader).
		Scan(&txID, &pos.GlobalPosition)
	if errors.Is(err, pgx.ErrNoRows) {
		return Start, nil
	}
	if err == nil {
		pos.TransactionID, err = strconv.ParseUint(txID, 10, 64)
	}
	if err != nil {
		return pos, fmt.Errorf("eventstore: position of reader %s: %w", reader, err)
	}
	return pos, nil
}

// SaveReaderPosition sets the reader's position to pos and clears its last
// error: the reader is done with everything up to pos. Give it the
// transaction that did the reader's work, so that both commit together.
func SaveReaderPosition(ctx context.Context, db DB, reader string, pos Position) error {
	_, err := db.Exec(ctx, `
		INSERT INTO `+PositionsTable+` (reader, transaction_id, global_position) VALUES ($1, $2::text::xid8, $3)
		ON CONFLICT (reader) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position,
			updated_at = now(), last_error = NULL, last_error_at = NULL`,
		reader, strconv.FormatUint(pos.TransactionID, 10), pos.GlobalPosition)
	if err != nil {
		return fmt.Errorf("eventstore: save position of reader %s at %v: %w", reader, pos, err)
	}
	return nil
}

// RecordReaderError notes on the reader's position why its last batch
// failed; the next SaveReaderPosition clears it.
func RecordReaderError(ctx context.Context, db DB, reader string, cause error) error {
	_, err := db.Exec(ctx, `
		INSERT INTO `+PositionsTable+` (reader, last_error, last_error_at) VALUES ($1, $2, now())
		ON CONFLICT (reader) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
		reader, cause.Error())
	if err != nil {
		return fmt.Errorf("eventstore: record error of reader %s: %w", reader, err)
	}
	return nil
}
