package projections

import (
	"context"
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

// Statuses returns the status of each projection: its reader status in the
// event store (eventstore.ReaderStatuses, the forwarder's lag query too)
// and the events it skipped.
func Statuses(ctx context.Context, db eventstore.DB, projections []Projection) ([]Status, error) {
	skipped, err := skippedBy(ctx, db)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(projections))
	for i, p := range projections {
		names[i] = p.Name
	}
	readers, err := eventstore.ReaderStatuses(ctx, db, names...)
	if err != nil {
		return nil, err
	}
	statuses := make([]Status, len(readers))
	for i, r := range readers {
		statuses[i] = Status{Name: r.Reader, Checkpoint: r.Position, UpdatedAt: r.UpdatedAt, LagEvents: r.LagEvents, LagAge: r.LagAge,
			LastError: r.LastError, LastErrorAt: r.LastErrorAt, Skipped: skipped[r.Reader]}
	}
	return statuses, nil
}
