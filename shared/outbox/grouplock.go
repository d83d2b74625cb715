package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
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
//
// Each transaction runs on a connection of its own (a *sql.Conn, held from
// BeginTx until the subscriber has ended the transaction and asks its
// backoff manager how long to wait, see releasing), so that the forwarder
// can read ahead on the same connection through pgx (readAfter).
type groupLocked struct {
	*sql.DB
	group string
	// stopped is done when the forwarder stops: a wait for the lock ends
	// then, or a standby replica's stop would wait for as long as the
	// forwarder holding the lock waits for Kafka.
	stopped context.Context

	mu   sync.Mutex
	tx   *sql.Tx   // the subscriber's read transaction (it reads one at a time)
	conn *sql.Conn // tx's connection
}

// BeginTx begins a transaction that holds the group's lock.
func (g *groupLocked) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	g.release()
	conn, err := g.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Only the wait is cut short: ctx, the transaction's, must stay as it is
	// (database/sql rolls a transaction back when its context ends).
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.stopped, cancel)()
	if _, err := tx.ExecContext(wait, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "reader_positions/"+g.group); err != nil {
		_ = tx.Rollback()
		_ = conn.Close()
		return nil, fmt.Errorf("outbox: wait for consumer group %s's lock: %w", g.group, err)
	}
	g.mu.Lock()
	g.tx, g.conn = tx, conn
	g.mu.Unlock()
	return tx, nil
}

// connOf returns tx's connection, or nil if tx is not the current one.
func (g *groupLocked) connOf(tx *sql.Tx) *sql.Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tx != g.tx {
		return nil
	}
	return g.conn
}

// release returns the last transaction's connection to the pool; the
// transaction has ended by then (Close would wait until it has).
func (g *groupLocked) release() {
	g.mu.Lock()
	conn := g.conn
	g.tx, g.conn = nil, nil
	g.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// releasing is the subscriber's backoff manager: the subscriber asks it
// how long to wait after every read transaction, once the transaction has
// ended, which is when its connection goes back to the pool.
type releasing struct {
	wsql.BackoffManager
	locked *groupLocked
}

func (r releasing) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	r.locked.release()
	return r.BackoffManager.HandleError(logger, noMsg, err)
}
