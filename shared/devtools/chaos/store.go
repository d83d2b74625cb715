package chaos

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Stream ids, as the services name them (see order/adapters and
// payment/adapters): the harness reads tables, it does not import services.
const (
	orderStreamPrefix   = "order-"
	paymentStreamPrefix = "payment-"
)

// storedEvent is one row of an events table, as the checker needs it.
type storedEvent struct {
	id, stream, eventType string
	version               int64
}

// snapshot is what both databases hold once the system is quiet.
type snapshot struct {
	// orders and payments map an order id to its stream's events, in
	// stream_version order.
	orders, payments map[string][]storedEvent
	charges, refunds map[string]int // gateway rows per idempotency key (order id)
	poisonRows       int
}

func readSnapshot(ctx context.Context, orderDB, paymentDB *pgxpool.Pool) (*snapshot, error) {
	s := &snapshot{}
	var err error
	if s.orders, err = readStreams(ctx, orderDB, orderStreamPrefix); err != nil {
		return nil, err
	}
	if s.payments, err = readStreams(ctx, paymentDB, paymentStreamPrefix); err != nil {
		return nil, err
	}
	if s.charges, err = countByKey(ctx, paymentDB, `SELECT idempotency_key, count(*) FROM gateway_charges GROUP BY 1`); err != nil {
		return nil, err
	}
	if s.refunds, err = countByKey(ctx, paymentDB, `SELECT idempotency_key, count(*) FROM gateway_refunds GROUP BY 1`); err != nil {
		return nil, err
	}
	err = paymentDB.QueryRow(ctx, `SELECT count(*) FROM poison_messages`).Scan(&s.poisonRows)
	return s, err
}

func readStreams(ctx context.Context, pool *pgxpool.Pool, prefix string) (map[string][]storedEvent, error) {
	rows, err := pool.Query(ctx, `SELECT event_id::text, stream_id, stream_version, event_type FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	streams := map[string][]storedEvent{}
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.id, &e.stream, &e.version, &e.eventType); err != nil {
			return nil, err
		}
		orderID := strings.TrimPrefix(e.stream, prefix)
		streams[orderID] = append(streams[orderID], e)
	}
	return streams, rows.Err()
}

func countByKey(ctx context.Context, pool *pgxpool.Pool, query string) (map[string]int, error) {
	rows, err := pool.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var key string
		var n int
		if err := rows.Scan(&key, &n); err != nil {
			return nil, err
		}
		counts[key] = n
	}
	return counts, rows.Err()
}

// count returns how many events of eventType the stream holds.
func count(stream []storedEvent, eventType string) int {
	n := 0
	for _, e := range stream {
		if e.eventType == eventType {
			n++
		}
	}
	return n
}
