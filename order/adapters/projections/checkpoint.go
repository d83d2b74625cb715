package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// tryLockApply takes, until tx ends, the lock that lets one writer at a time
// apply events to the projection's live table: a projector's batch, or the
// swap at the end of a replay. It is an advisory lock rather than FOR UPDATE
// on the checkpoint row so that a poll that finds nothing new writes nothing
// and takes no transaction id, which would hold back every reader's
// visibility horizon (pg_snapshot_xmin) for the whole cluster.
func tryLockApply(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var locked bool
	err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, applyLockName(name)).Scan(&locked)
	if err != nil {
		return false, fmt.Errorf("lock projection %s: %w", name, err)
	}
	return locked, nil
}

// lockApply is tryLockApply that waits for the lock.
func lockApply(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, applyLockName(name)); err != nil {
		return fmt.Errorf("lock projection %s: %w", name, err)
	}
	return nil
}

func applyLockName(name string) string { return "order projection apply " + name }

// A projection's checkpoint is its reader position in the event store's
// table of reader positions (eventstore.PositionsTable), under the
// projection's name: the table and the lag query the forwarder uses too
// (eventstore.ReaderPosition, SaveReaderPosition, RecordReaderError,
// ReaderStatuses). The projector moves it in the same transaction as the
// rows it wrote, so a crash neither skips nor repeats an event.
