package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/testenv"
)

const benchEvents = 100_000

// BenchmarkReplay measures `order replay` of each projection over a store of
// 100k events of orders in every status.
//
//	go test -run '^$' -bench Replay -benchtime 1x ./order/adapters/projections/
func BenchmarkReplay(b *testing.B) {
	pool := newDatabase(b)
	storeLifecycles(b, pool, benchEvents)
	for _, p := range projections.All {
		b.Run(p.Name, func(b *testing.B) {
			var progress projections.Progress
			for b.Loop() {
				var err error
				if progress, err = projections.Replay(context.Background(), pool, p, projections.ReplayOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(progress.Rate(), "events/s")
		})
	}
}

// BenchmarkProjectorBacklog measures the live projector (both projections at
// once, the default batch size) working off a backlog of 100k events.
func BenchmarkProjectorBacklog(b *testing.B) {
	pool := newDatabase(b)
	storeLifecycles(b, pool, benchEvents)
	ctx := context.Background()
	s := projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 500}
	for b.Loop() {
		b.StopTimer()
		if _, err := pool.Exec(ctx, `TRUNCATE order_summaries, order_daily_stats, projection_checkpoints`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		stop := startProjector(b, pool, s)
		waitCaughtUp(b, pool)
		stop()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// storeLifecycles stores n events of orders placed over a month, most of
// them paid, some declined, cancelled or refunded, copied in bulk.
func storeLifecycles(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var rows [][]any
	add := func(o *order.Order) {
		for i, e := range o.Changes() {
			payload, err := json.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, []any{adapters.StreamID(o.ID()), o.OriginalVersion() + int64(i) + 1, uuid.New(), e.EventType(), e.SchemaVersion(), payload})
		}
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for len(rows) < n {
		at := start.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
		o, err := order.Place(order.PlaceOrder{OrderID: uuid.NewString(), CustomerID: fmt.Sprint("customer-", rng.IntN(1000)),
			Currency: "EUR", Items: []order.LineItem{{SKU: "book", Quantity: 1 + rng.Int64N(3), UnitPrice: 500 + rng.Int64N(5000)}}}, at)
		if err != nil {
			b.Fatal(err)
		}
		switch r := rng.IntN(10); {
		case r < 6:
			err = o.RecordPaymentSucceeded("charge", o.Total(), at)
		case r < 8:
			err = o.RecordPaymentDeclined("declined", at)
		case r < 9:
			err = o.Cancel("changed my mind", at)
		default:
			if err = o.RecordPaymentSucceeded("charge", o.Total(), at); err == nil {
				if err = o.Cancel("changed my mind", at); err == nil {
					err = o.RecordRefund("refund", o.Total(), at)
				}
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		add(o)
	}
	rows = rows[:n]
	columns := []string{"stream_id", "stream_version", "event_id", "event_type", "schema_version", "payload"}
	for chunk := range slices.Chunk(rows, 10_000) {
		if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"events"}, columns, pgx.CopyFromRows(chunk)); err != nil {
			b.Fatal(err)
		}
	}
	// As autovacuum would have by then: without statistics the planner
	// sorts the whole backlog for every batch instead of walking the index.
	if _, err := pool.Exec(context.Background(), `ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	testenv.WaitEventsReadable(b, pool)
}
