package projections

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/domain/order"
)

// OrderDailyStats keeps order_daily_stats: orders and revenue per day placed
// (UTC), status and currency. Each order counts once, in its current status:
// a change of status moves the order from one row to another, and a row that
// no order is in any more is deleted.
var OrderDailyStats = Projection{Name: "order_daily_stats", apply: applyOrderDailyStats}

// statsKey is the row an order counts in.
type statsKey struct {
	day              time.Time
	status, currency string
}

func keyOf(o *order.Order) statsKey {
	y, m, d := o.PlacedAt().UTC().Date()
	return statsKey{time.Date(y, m, d, 0, 0, 0, 0, time.UTC), string(o.Status()), o.Currency()}
}

// statsDeltas are the orders and revenue a batch adds to (or takes from)
// each row, as columns in the order the rows were first touched.
type statsDeltas struct {
	index            map[statsKey]int
	day              []time.Time
	status, currency []string
	orders, revenue  []int64
}

func (d *statsDeltas) add(k statsKey, total int64) {
	i, ok := d.index[k]
	if !ok {
		if d.index == nil {
			d.index = map[statsKey]int{}
		}
		i = len(d.day)
		d.index[k] = i
		d.day, d.status, d.currency = append(d.day, k.day), append(d.status, k.status), append(d.currency, k.currency)
		d.orders, d.revenue = append(d.orders, 0), append(d.revenue, 0)
	}
	d.orders[i]++
	d.revenue[i] += total
}

func applyOrderDailyStats(b *pgx.Batch, table string, changes []Change) {
	var in, out statsDeltas
	for _, c := range changes {
		after := keyOf(c.After)
		if c.Before != nil {
			before := keyOf(c.Before)
			if before == after {
				continue
			}
			out.add(before, c.Before.Total())
		}
		in.add(after, c.After.Total())
	}
	const deltas = `unnest($1::date[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS d (day, status, currency, orders, revenue)`
	// Additions first, so that an order placed and moved on in the same
	// batch is taken from a row that exists.
	if len(in.day) > 0 {
		b.Queue(`INSERT INTO `+table+` AS s (day, status, currency, orders, revenue) SELECT * FROM `+deltas+`
			ON CONFLICT (day, status, currency) DO UPDATE SET orders = s.orders + excluded.orders, revenue = s.revenue + excluded.revenue`,
			in.day, in.status, in.currency, in.orders, in.revenue)
	}
	if n := len(out.day); n > 0 {
		// A row missing, or left with fewer than no orders (the table's
		// CHECK), fails the batch.
		b.Queue(`UPDATE `+table+` AS s SET orders = s.orders - d.orders, revenue = s.revenue - d.revenue FROM `+deltas+`
			WHERE (s.day, s.status, s.currency) = (d.day, d.status, d.currency)`,
			out.day, out.status, out.currency, out.orders, out.revenue,
		).Exec(rows(changes, table, n))
		b.Queue(`DELETE FROM `+table+` AS s USING unnest($1::date[], $2::text[], $3::text[]) AS d (day, status, currency)
			WHERE (s.day, s.status, s.currency) = (d.day, d.status, d.currency) AND s.orders = 0`,
			out.day, out.status, out.currency)
	}
}
