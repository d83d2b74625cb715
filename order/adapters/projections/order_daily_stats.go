package projections

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/domain/order"
)

// OrderDailyStats keeps order_daily_stats: orders and revenue per day placed
// (UTC), status and currency. Each order counts once, in its current status:
// an event that changes the status moves the order from one row to another,
// and a row that no order is in any more is deleted.
var OrderDailyStats = Projection{Name: "order_daily_stats", apply: applyOrderDailyStats}

func applyOrderDailyStats(b *pgx.Batch, table string, c Change) {
	if c.Before != nil {
		if c.Before.Status() == c.After.Status() {
			return
		}
		day, status, currency, total := statsKey(c.Before)
		b.Queue(`UPDATE `+table+` SET orders = orders - 1, revenue = revenue - $4
			WHERE day = $1 AND status = $2 AND currency = $3`, day, status, currency, total,
		).Exec(oneRow(c, table))
		b.Queue(`DELETE FROM `+table+` WHERE day = $1 AND status = $2 AND currency = $3 AND orders = 0`, day, status, currency)
	}
	day, status, currency, total := statsKey(c.After)
	b.Queue(`INSERT INTO `+table+` AS s (day, status, currency, orders, revenue) VALUES ($1, $2, $3, 1, $4)
		ON CONFLICT (day, status, currency) DO UPDATE SET orders = s.orders + 1, revenue = s.revenue + excluded.revenue`,
		day, status, currency, total)
}

// statsKey is the row an order counts in, and what it adds to the revenue.
func statsKey(o *order.Order) (day time.Time, status order.Status, currency string, total int64) {
	y, m, d := o.PlacedAt().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), o.Status(), o.Currency(), o.Total()
}
