package projections_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

func newDatabase(t testing.TB) *pgxpool.Pool {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	return pool
}

// poolOfItsOwn opens another pool on pool's database, as another replica
// would, closed when the test ends.
func poolOfItsOwn(t testing.TB, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	other, err := pgxpool.New(context.Background(), pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return other
}

var fastProjector = projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100}

// startProjector runs the projector of every projection until the returned
// stop is called (or the test ends).
func startProjector(t testing.TB, pool *pgxpool.Pool, s projections.Settings) (stop func()) {
	return testenv.Go(t, "projector", func(ctx context.Context) error {
		return projections.Run(ctx, pool, projections.All, s, slog.New(slog.DiscardHandler))
	})
}

// waitCaughtUp waits until every projection has applied every stored event.
// Visibility follows the oldest transaction open anywhere on the server
// (other tests run meanwhile), so this may take a moment.
func waitCaughtUp(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "projections caught up", func() bool {
		statuses, err := projections.Statuses(context.Background(), pool, projections.All)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.LagEvents > 0 {
				return false
			}
		}
		return true
	})
}

// workload places orders and moves them through their lifecycle with the
// aggregate's own commands, as the HTTP API and the saga would.
type workload struct {
	t      testing.TB
	pool   *pgxpool.Pool
	orders *adapters.OrderRepository
	rng    *rand.Rand
	ids    []string
	events int
}

func newWorkload(t testing.TB, pool *pgxpool.Pool, seed uint64) *workload {
	return &workload{t: t, pool: pool, orders: adapters.NewOrderRepository(pool, nil), rng: rand.New(rand.NewPCG(seed, 1))}
}

var (
	customers  = []string{"alice", "bob", "carol", "dave"}
	currencies = []string{"EUR", "USD"}
	firstDay   = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
)

// place places n orders, on one of a few days.
func (w *workload) place(n int) {
	w.t.Helper()
	if err := w.tryPlace(n); err != nil {
		w.t.Fatal(err)
	}
}

// advance gives n random orders their next step: paid, declined, cancelled
// or refunded, whichever their status allows.
func (w *workload) advance(n int) {
	w.t.Helper()
	if err := w.tryAdvance(n); err != nil {
		w.t.Fatal(err)
	}
}

// tryPlace is place that returns its error, for a goroutine other than the test's.
func (w *workload) tryPlace(n int) error {
	for range n {
		at := firstDay.Add(time.Duration(w.rng.Int64N(int64(5 * 24 * time.Hour))))
		o, err := order.Place(order.PlaceOrder{
			OrderID:    fmt.Sprintf("%08d-%04x", len(w.ids), w.rng.IntN(1<<16)),
			CustomerID: customers[w.rng.IntN(len(customers))],
			Currency:   currencies[w.rng.IntN(len(currencies))],
			Items: []order.LineItem{
				{SKU: "book", Quantity: 1 + w.rng.Int64N(3), UnitPrice: 500 + w.rng.Int64N(5000)},
				{SKU: "pen", Quantity: 1 + w.rng.Int64N(5), UnitPrice: 100},
			},
		}, at)
		if err == nil {
			err = w.save(o)
		}
		if err != nil {
			return err
		}
		w.ids = append(w.ids, o.ID())
	}
	return nil
}

// tryAdvance is advance that returns its error, for a goroutine other than the test's.
func (w *workload) tryAdvance(n int) error {
	ctx := context.Background()
	for range n {
		o, err := w.orders.Get(ctx, w.ids[w.rng.IntN(len(w.ids))])
		if err != nil {
			return err
		}
		now := o.PlacedAt().Add(time.Hour)
		switch w.rng.IntN(4) {
		case 0:
			err = o.RecordPaymentSucceeded("ch-"+o.ID(), o.Total(), now)
		case 1:
			err = o.RecordPaymentDeclined("insufficient funds", now)
		case 2:
			err = o.Cancel("changed my mind", now)
		case 3:
			err = o.RecordRefund("re-"+o.ID(), o.Total(), now)
		}
		var notNow *order.TransitionError
		if errors.As(err, &notNow) || len(o.Changes()) == 0 {
			continue
		}
		if err == nil {
			err = w.save(o)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *workload) save(o *order.Order) error {
	err := eventstore.Save(context.Background(), w.pool, adapters.StreamID(o.ID()), o.OriginalVersion(), eventstore.Context{}, o.Changes())
	if err == nil {
		w.events += len(o.Changes())
	}
	return err
}

// readModels is the content of every read-model table, one string per row,
// sorted, to compare row by row.
type readModels map[string][]string

func readTables(t testing.TB, pool *pgxpool.Pool) readModels {
	t.Helper()
	ctx := context.Background()
	models := readModels{}
	rows, err := pool.Query(ctx, `SELECT order_id, customer_id, status, currency, total, item_count, placed_at, updated_at, version
		FROM order_summaries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s summaryRow
		if err := rows.Scan(&s.orderID, &s.customerID, &s.status, &s.currency, &s.total, &s.itemCount, &s.placedAt, &s.updatedAt, &s.version); err != nil {
			t.Fatal(err)
		}
		models["order_summaries"] = append(models["order_summaries"], s.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = pool.Query(ctx, `SELECT day, status, currency, orders, revenue FROM order_daily_stats`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s statsRow
		if err := rows.Scan(&s.day, &s.status, &s.currency, &s.orders, &s.revenue); err != nil {
			t.Fatal(err)
		}
		models["order_daily_stats"] = append(models["order_daily_stats"], s.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return models.sorted()
}

type summaryRow struct {
	orderID, customerID, status, currency string
	total, itemCount, version             int64
	placedAt, updatedAt                   time.Time
}

func (s summaryRow) String() string {
	return fmt.Sprintf("%s %s %s %s total=%d items=%d placed=%s updated=%s v%d", s.orderID, s.customerID, s.status, s.currency,
		s.total, s.itemCount, s.placedAt.UTC().Format(time.RFC3339Nano), s.updatedAt.UTC().Format(time.RFC3339Nano), s.version)
}

type statsRow struct {
	day              time.Time
	status, currency string
	orders, revenue  int64
}

func (s statsRow) String() string {
	return fmt.Sprintf("%s %s %s orders=%d revenue=%d", s.day.Format(time.DateOnly), s.status, s.currency, s.orders, s.revenue)
}

// expectedTables computes the read models straight from the aggregates, as
// a check independent of the projection code.
func expectedTables(t testing.TB, pool *pgxpool.Pool, orderIDs []string) readModels {
	t.Helper()
	ctx := context.Background()
	var summaries []summaryRow
	for _, id := range orderIDs {
		recorded, err := eventstore.Load(ctx, pool, adapters.StreamID(id))
		if err != nil {
			t.Fatal(err)
		}
		events, err := adapters.Events.DecodeAll(recorded)
		if err != nil {
			t.Fatal(err)
		}
		o, err := order.FromEvents(events)
		if err != nil {
			t.Fatal(err)
		}
		var items int64
		for _, it := range o.Items() {
			items += it.Quantity
		}
		summaries = append(summaries, summaryRow{
			orderID: o.ID(), customerID: o.CustomerID(), status: string(o.Status()), currency: o.Currency(),
			total: o.Total(), itemCount: items, version: o.Version(),
			// PostgreSQL keeps microseconds.
			placedAt: o.PlacedAt().Truncate(time.Microsecond), updatedAt: recorded[len(recorded)-1].RecordedAt,
		})
	}
	totals := map[[3]string]*statsRow{}
	for _, s := range summaries {
		y, m, d := s.placedAt.UTC().Date()
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		key := [3]string{day.Format(time.DateOnly), s.status, s.currency}
		if totals[key] == nil {
			totals[key] = &statsRow{day: day, status: s.status, currency: s.currency}
		}
		totals[key].orders++
		totals[key].revenue += s.total
	}
	models := readModels{}
	for _, s := range summaries {
		models["order_summaries"] = append(models["order_summaries"], s.String())
	}
	for _, s := range totals {
		models["order_daily_stats"] = append(models["order_daily_stats"], s.String())
	}
	return models.sorted()
}

// sorted sorts the rows in Go, since the server's collation may order
// text differently.
func (m readModels) sorted() readModels {
	for _, rows := range m {
		slices.Sort(rows)
	}
	return m
}

// requireEqual fails the test at the first table row that differs.
func requireEqual(t testing.TB, what string, got, want readModels) {
	t.Helper()
	for _, table := range []string{"order_summaries", "order_daily_stats"} {
		g, w := got[table], want[table]
		for i := range max(len(g), len(w)) {
			var gi, wi string
			if i < len(g) {
				gi = g[i]
			}
			if i < len(w) {
				wi = w[i]
			}
			if gi != wi {
				t.Fatalf("%s: %s differs at row %d of %d/%d:\n got: %s\nwant: %s", what, table, i, len(g), len(w), gi, wi)
			}
		}
	}
}
