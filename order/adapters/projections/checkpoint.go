package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/eventstore"
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

// readCheckpoint returns the position of the last event applied to the
// projection, or eventstore.Start.
func readCheckpoint(ctx context.Context, db eventstore.DB, name string) (eventstore.Position, error) {
	var txID string
	var pos eventstore.Position
	err := db.QueryRow(ctx, `SELECT transaction_id::text, global_position FROM projection_checkpoints WHERE name = $1`, name).
		Scan(&txID, &pos.GlobalPosition)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err == nil {
		pos.TransactionID, err = strconv.ParseUint(txID, 10, 64)
	}
	if err != nil {
		return pos, fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	return pos, nil
}

// saveCheckpoint moves the projection's checkpoint to pos and clears its
// last error: everything up to pos has been applied.
func saveCheckpoint(ctx context.Context, tx pgx.Tx, name string, pos eventstore.Position) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO projection_checkpoints (name, transaction_id, global_position) VALUES ($1, $2::text::xid8, $3)
		ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position,
			updated_at = now(), last_error = NULL, last_error_at = NULL`,
		name, strconv.FormatUint(pos.TransactionID, 10), pos.GlobalPosition)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s at %v: %w", name, pos, err)
	}
	return nil
}

// recordError notes on the projection's checkpoint why its last batch failed,
// for `order projections`.
func recordError(ctx context.Context, db eventstore.DB, name string, cause error) error {
	_, err := db.Exec(ctx, `
		INSERT INTO projection_checkpoints (name, last_error, last_error_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
		name, cause.Error())
	if err != nil {
		return fmt.Errorf("record error of %s: %w", name, err)
	}
	return nil
}
