package outbox

import (
	"context"
	"database/sql"
	"fmt"
)

// groupLocked is the database as the forwarder's SQL subscriber sees it:
// every read transaction first waits for its consumer group's lock, a
// transaction-scoped advisory lock, so the forwarders of one group (one per
// replica of a service) read and send one batch at a time, each after the
// offset the previous one stored.
//
// Watermill's default locks the group's offset row instead (SELECT ... FOR
// UPDATE). A row lock gives the transaction an id, and the transaction
// stays open while its batch waits for Kafka's acknowledgements: for as
// long as a Kafka outage lasts. Every reader in commit order on the
// PostgreSQL server (the projector, the other service's forwarder) reads
// only below the oldest open transaction id (pg_snapshot_xmin), so that
// lock stalled them all behind Kafka. An advisory lock takes no
// transaction id: the transaction gets one at the offset's UPDATE, just
// before it commits. A forwarder waiting for the lock holds no id either,
// and does not poll.
type groupLocked struct {
	*sql.DB
	group string
	// stopped is done when the forwarder stops: a wait for the lock ends
	// then, or a standby replica's stop would wait for as long as the
	// forwarder holding the lock waits for Kafka.
	stopped context.Context
}

// BeginTx begins a transaction that holds the group's lock.
func (g groupLocked) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := g.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	// Only the wait is cut short: ctx, the transaction's, must stay as it is
	// (database/sql rolls a transaction back when its context ends).
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.stopped, cancel)()
	if _, err := tx.ExecContext(wait, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "reader_positions/"+g.group); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("outbox: wait for consumer group %s's lock: %w", g.group, err)
	}
	return tx, nil
}
