package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

const benchEvents = 100_000

// BenchmarkReplay measures `order replay --all` (every projection, one after
// another) over stores of 100k and 1M events of orders in every status,
// beside a raw baseline in the same run: a keyset read of the events that
// folds every order in memory and copies the final rows of both read models
// into fresh tables. Both must produce the same tables. peak_rss_MiB is the
// process's peak resident memory during the replay: it must not grow with
// the number of events.
//
//	go test -run '^$' -bench Replay -benchtime 1x -count 3 ./order/adapters/projections/
func BenchmarkReplay(b *testing.B) {
	for _, n := range []int{benchEvents, 1_000_000} {
		b.Run(fmt.Sprint("events=", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				pool := newDatabase(b)
				storeLifecycles(b, pool, n)
				resetPeakRSS(b)
				b.StartTimer()

				start := time.Now()
				for _, p := range projections.All {
					if _, err := projections.Replay(context.Background(), pool, p, projections.ReplayOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				replay := time.Since(start)
				b.ReportMetric(peakRSS(b), "peak_rss_MiB")

				start = time.Now()
				rawReplay(b, pool, "_raw")
				raw := time.Since(start)
				requireSameTables(b, pool, "_raw")

				b.ReportMetric(float64(n)/replay.Seconds(), "events/s")
				b.ReportMetric(float64(n)/raw.Seconds(), "baseline_events/s")
			}
		})
	}
}

// rawReplay is the baseline: what a rebuild costs with nothing but a keyset
// read of the events, in the order a replay reads them, the aggregate's own
// decoding and folding, and one COPY per read model into a new table (named
// like the live one with suffix). It keeps every order in memory.
func rawReplay(b *testing.B, pool *pgxpool.Pool, suffix string) {
	ctx := context.Background()
	streams := map[string][]order.Event{}
	updated := map[string]time.Time{}
	var ids []string
	for after := eventstore.Start; ; {
		events, err := eventstore.ReadAll(ctx, pool, after, projections.DefaultReplayBatchSize)
		if err != nil {
			b.Fatal(err)
		}
		if len(events) == 0 {
			break
		}
		for _, e := range events {
			decoded, err := adapters.Events.Decode(e)
			if err != nil {
				b.Fatal(err)
			}
			if e.StreamVersion == 1 {
				ids = append(ids, e.StreamID)
			}
			streams[e.StreamID] = append(streams[e.StreamID], decoded)
			updated[e.StreamID] = e.RecordedAt
		}
		after = events[len(events)-1].Position
	}

	type statsKey struct {
		day              time.Time
		status, currency string
	}
	var summaries [][]any
	stats := map[statsKey][]int64{}
	for _, id := range ids {
		o, err := order.FromEvents(streams[id])
		if err != nil {
			b.Fatal(err)
		}
		var units int64
		for _, it := range o.Items() {
			units += it.Quantity
		}
		summaries = append(summaries, []any{o.ID(), o.CustomerID(), string(o.Status()), o.Currency(), o.Total(), units,
			o.PlacedAt(), updated[id], o.Version()})
		y, m, d := o.PlacedAt().UTC().Date()
		key := statsKey{time.Date(y, m, d, 0, 0, 0, 0, time.UTC), string(o.Status()), o.Currency()}
		if stats[key] == nil {
			stats[key] = []int64{0, 0}
		}
		stats[key][0]++
		stats[key][1] += o.Total()
	}
	var statsRows [][]any
	for k, v := range stats {
		statsRows = append(statsRows, []any{k.day, k.status, k.currency, v[0], v[1]})
	}

	for table, t := range map[string]struct {
		columns []string
		rows    [][]any
	}{
		"order_summaries":   {[]string{"order_id", "customer_id", "status", "currency", "total", "item_count", "placed_at", "updated_at", "version"}, summaries},
		"order_daily_stats": {[]string{"day", "status", "currency", "orders", "revenue"}, statsRows},
	} {
		raw := pgx.Identifier{table + suffix}
		if _, err := pool.Exec(ctx, `CREATE TABLE `+raw.Sanitize()+` (LIKE `+table+` INCLUDING ALL)`); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.CopyFrom(ctx, raw, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			b.Fatal(err)
		}
	}
}

// requireSameTables fails unless each read model holds the same rows as the
// table named like it with suffix.
func requireSameTables(b *testing.B, pool *pgxpool.Pool, suffix string) {
	for _, table := range projections.Names() {
		other := pgx.Identifier{table + suffix}.Sanitize()
		var rows, missing, extra int64
		err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM `+table+`),
			(SELECT count(*) FROM (TABLE `+other+` EXCEPT ALL TABLE `+table+`) d),
			(SELECT count(*) FROM (TABLE `+table+` EXCEPT ALL TABLE `+other+`) d)`).Scan(&rows, &missing, &extra)
		if err != nil {
			b.Fatal(err)
		}
		if missing != 0 || extra != 0 || rows == 0 {
			b.Fatalf("%s: %d rows, %d missing and %d extra against %s", table, rows, missing, extra, other)
		}
	}
}

// resetPeakRSS returns the memory the heap no longer uses to the system and
// restarts the process's peak resident set size (VmHWM) from the current one.
func resetPeakRSS(b *testing.B) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatal(err)
	}
}

// peakRSS is the process's peak resident set size (VmHWM) in MiB.
func peakRSS(b *testing.B) float64 {
	rss, err := testenv.PeakRSS(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return rss
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
		if _, err := pool.Exec(ctx, `TRUNCATE order_summaries, order_daily_stats; DELETE FROM reader_positions WHERE reader IN ('order_summaries', 'order_daily_stats')`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		stop := startProjector(b, pool, s)
		waitCaughtUp(b, pool)
		stop()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProjectorIdle measures what the idle projectors (every
// projection) cost: the CPU time of this process and the transactions begun
// per second, with the default settings (waiting for an append's
// notification), beside the same projectors polling every poll interval
// whatever happens (an idle poll interval equal to the poll interval), as
// they did before.
//
//	go test -run '^$' -bench ProjectorIdle -benchtime 1x -count 3 ./order/adapters/projections/
func BenchmarkProjectorIdle(b *testing.B) {
	const idle = 5 * time.Second
	waiting := projections.Settings{Enabled: true, PollInterval: 20 * time.Millisecond, IdlePollInterval: time.Second, BatchSize: 500}
	polling := waiting
	polling.IdlePollInterval = polling.PollInterval
	for b.Loop() {
		pool := newDatabase(b)
		stop := startProjector(b, pool, waiting)
		cpu, tx := testenv.IdleCost(pool, idle)
		stop()
		stop = startProjector(b, pool, polling)
		baselineCPU, baselineTx := testenv.IdleCost(pool, idle)
		stop()

		b.ReportMetric(cpu, "cpu_ms/s")
		b.ReportMetric(tx, "tx/s")
		b.ReportMetric(baselineCPU, "baseline_cpu_ms/s")
		b.ReportMetric(baselineTx, "baseline_tx/s")
	}
}

// storeLifecycles stores n events of orders placed over a month, most of
// them paid, some declined, cancelled or refunded, copied in bulk as they are
// made (10k per transaction), then vacuumed and analyzed as autovacuum would
// have by then: without statistics the planner sorts the whole backlog for
// every batch instead of walking the index, and whoever reads fresh rows
// first pays for setting their hint bits.
func storeLifecycles(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var pending [][]any // the events of the last order made not yet copied
	next := func() []any {
		for len(pending) == 0 {
			pending = lifecycle(b, rng, start.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour)))))
		}
		row := pending[0]
		pending = pending[1:]
		return row
	}
	columns := []string{"stream_id", "stream_version", "event_id", "event_type", "schema_version", "payload"}
	for stored := 0; stored < n; {
		chunk := min(10_000, n-stored)
		copied := 0
		rows := pgx.CopyFromFunc(func() ([]any, error) {
			if copied == chunk {
				return nil, nil
			}
			copied++
			return next(), nil
		})
		if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"events"}, columns, rows); err != nil {
			b.Fatal(err)
		}
		stored += chunk
	}
	if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	testenv.WaitEventsReadable(b, pool)
}

// lifecycle makes one order placed at a random time and moved on, and
// returns its events as rows of the events table.
func lifecycle(b *testing.B, rng *rand.Rand, at time.Time) [][]any {
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
	var rows [][]any
	for i, e := range o.Changes() {
		payload, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, []any{adapters.StreamID(o.ID()), o.OriginalVersion() + int64(i) + 1, uuid.New(), e.EventType(), e.SchemaVersion(), payload})
	}
	return rows
}
