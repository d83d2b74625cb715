package projections

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/es-outbox/reference/shared/eventstore"
)

// Status is where a projection is and how far behind the event store.
type Status struct {
	Name string
	// Checkpoint is the position of the last event applied.
	Checkpoint eventstore.Position
	// UpdatedAt is when the checkpoint last moved; zero if it never has.
	UpdatedAt time.Time
	// LagEvents counts the stored events not applied yet.
	LagEvents int64
	// LagAge is how long ago the oldest of them was recorded.
	LagAge time.Duration
	// LastError says why the last batch failed, unless one succeeded since.
	LastError   string
	LastErrorAt time.Time
	// Skipped are the events it passed over, by type: newer than its code.
	Skipped []Skipped
}

// Statuses returns the status of each projection.
func Statuses(ctx context.Context, db eventstore.DB, projections []Projection) ([]Status, error) {
	skipped, err := skippedBy(ctx, db)
	if err != nil {
		return nil, err
	}
	statuses := make([]Status, len(projections))
	for i, p := range projections {
		s := Status{Name: p.Name, Skipped: skipped[p.Name]}
		var txID string
		var lastError *string
		var updatedAt, lastErrorAt *time.Time
		var lagSeconds float64
		err := db.QueryRow(ctx, `
			SELECT cp.transaction_id::text, cp.global_position,
			       -- recordError creates the row of a projection whose first batch
			       -- failed; its updated_at is then the insert's, not a move.
			       CASE WHEN cp.global_position > 0 THEN c.updated_at END, c.last_error, c.last_error_at,
			       lag.events, coalesce(extract(epoch FROM now() - lag.oldest), 0)::float8
			FROM (SELECT $1::text AS name) AS p
			LEFT JOIN projection_checkpoints c USING (name)
			CROSS JOIN LATERAL (
				SELECT coalesce(c.transaction_id, '0') AS transaction_id, coalesce(c.global_position, 0) AS global_position
			) AS cp
			CROSS JOIN LATERAL (
				SELECT count(*) AS events, min(e.recorded_at) AS oldest FROM events e
				WHERE (e.transaction_id, e.global_position) > (cp.transaction_id, cp.global_position)
			) AS lag`, p.Name,
		).Scan(&txID, &s.Checkpoint.GlobalPosition, &updatedAt, &lastError, &lastErrorAt, &s.LagEvents, &lagSeconds)
		if err == nil {
			s.Checkpoint.TransactionID, err = strconv.ParseUint(txID, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("status of projection %s: %w", p.Name, err)
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
