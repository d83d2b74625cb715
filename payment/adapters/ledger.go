package adapters

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/postgres"
)

// ledger is the simulated gateway's ledger of charges, one row per
// idempotency key (the order id). The charges asked for at the same time
// are written together, as a provider under load would: while one
// statement is in flight, the charges that come meanwhile queue, and the
// next statement takes them all. A consumer charges the orders of a batch
// at the same time, so a batch's charges cost one commit instead of one
// each: at 1,000 orders/s, one INSERT per charge was four in five of the
// payment database's transactions. Every caller still returns only once
// its order's charge, new or stored before, is durable.
type ledger struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	queued  []*ledgerEntry
	writing bool // a goroutine is writing what is queued
}

// ledgerEntry is one charge waiting to be recorded, and its answer.
type ledgerEntry struct {
	req    payment.Request
	charge payment.Charge // what to store unless the order has a charge
	stored payment.Charge // the key's charge once recorded
	err    error
	done   chan struct{}
}

// ledgerTimeout bounds one statement of the ledger: it runs for all the
// callers it serves, not in any one caller's context.
const ledgerTimeout = 10 * time.Second

// record stores charge for req's order unless the order has a charge
// already, and returns the order's charge: charge itself if it is new, the
// first one otherwise.
func (l *ledger) record(ctx context.Context, req payment.Request, charge payment.Charge) (payment.Charge, error) {
	e := &ledgerEntry{req: req, charge: charge, done: make(chan struct{})}
	l.mu.Lock()
	l.queued = append(l.queued, e)
	start := !l.writing
	l.writing = true
	l.mu.Unlock()
	if start {
		go l.writeQueued()
	}
	select {
	case <-e.done:
		return e.stored, e.err
	case <-ctx.Done():
		// The charge may still be recorded: a retry gets it back.
		return payment.Charge{}, ctx.Err()
	}
}

// writeQueued writes what is queued, one statement at a time, until the
// queue is empty.
func (l *ledger) writeQueued() {
	for {
		l.mu.Lock()
		batch := l.queued
		l.queued = nil
		if len(batch) == 0 {
			l.writing = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.write(batch)
	}
}

// write records batch in one statement. If the statement fails, each
// entry is written alone, so that one charge the database refuses fails
// only its own caller.
func (l *ledger) write(batch []*ledgerEntry) {
	stored, err := l.insert(batch)
	if err != nil && len(batch) > 1 {
		for _, e := range batch {
			l.write([]*ledgerEntry{e})
		}
		return
	}
	for _, e := range batch {
		c, ok := stored[e.req.OrderID]
		switch {
		case err != nil:
			e.err = err
		case !ok:
			// Recorded by a transaction that committed after this
			// statement began (the same order charged elsewhere at the
			// same moment): the next attempt reads it.
			e.err = fmt.Errorf("the charge of order %s is not visible yet", e.req.OrderID)
		default:
			e.stored = c
		}
		close(e.done)
	}
}

// insert adds the charges of batch whose orders have none, and returns
// the charge of every order of batch, by order id: the new ones, and the
// ones stored before.
func (l *ledger) insert(batch []*ledgerEntry) (map[string]payment.Charge, error) {
	n := len(batch)
	keys, ids, currencies, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, approved := make([]int64, n), make([]bool, n)
	for i, e := range batch {
		keys[i], ids[i], amounts[i], currencies[i] = e.req.OrderID, e.charge.ID, e.req.Amount, e.req.Currency
		approved[i], reasons[i] = e.charge.Approved, e.charge.DeclineReason
	}
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	// The charges this statement stores come from RETURNING, those stored
	// before from the table (its rows as the statement found them, so no
	// order comes from both). An order asked for twice in one statement
	// is inserted once: the second row finds the first and is skipped.
	// Planned on every run: a plan kept from when the table was small
	// reads all of it to find the charges stored before (19 ms at 60,000
	// charges, where the index takes a few microseconds a key).
	rows, err := l.pool.Query(ctx, `
		WITH asked AS (
			SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[], $5::boolean[], $6::text[])
				AS a (idempotency_key, charge_id, amount, currency, approved, decline_reason)
		), inserted AS (
			INSERT INTO gateway_charges (idempotency_key, charge_id, amount, currency, approved, decline_reason)
			SELECT * FROM asked ON CONFLICT (idempotency_key) DO NOTHING
			RETURNING idempotency_key, charge_id, approved, decline_reason
		)
		SELECT idempotency_key, charge_id::text, approved, decline_reason FROM inserted
		UNION ALL
		SELECT idempotency_key, charge_id::text, approved, decline_reason FROM gateway_charges
		WHERE idempotency_key IN (SELECT idempotency_key FROM asked)`,
		postgres.PlanEveryRun, keys, ids, amounts, currencies, approved, reasons)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := make(map[string]payment.Charge, n)
	for rows.Next() {
		var key string
		var c payment.Charge
		if err := rows.Scan(&key, &c.ID, &c.Approved, &c.DeclineReason); err != nil {
			return nil, err
		}
		stored[key] = c
	}
	return stored, rows.Err()
}
