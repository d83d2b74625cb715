package projections

import (
	"github.com/jackc/pgx/v5"
)

// OrderSummaries keeps one row per order in order_summaries: what
// GET /v1/orders lists.
var OrderSummaries = Projection{Name: "order_summaries", apply: applyOrderSummary}

func applyOrderSummary(b *pgx.Batch, table string, c Change) {
	o := c.After
	var units int64
	for _, it := range o.Items() {
		units += it.Quantity
	}
	if c.Before == nil {
		// Applying this event twice fails on the primary key.
		b.Queue(`INSERT INTO `+table+` (order_id, customer_id, status, currency, total, item_count, placed_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			o.ID(), o.CustomerID(), o.Status(), o.Currency(), o.Total(), units, o.PlacedAt(), c.Event.RecordedAt, o.Version())
		return
	}
	b.Queue(`UPDATE `+table+` SET customer_id = $2, status = $3, currency = $4, total = $5, item_count = $6,
			placed_at = $7, updated_at = $8, version = $9
		WHERE order_id = $1 AND version = $10`,
		o.ID(), o.CustomerID(), o.Status(), o.Currency(), o.Total(), units, o.PlacedAt(), c.Event.RecordedAt, o.Version(),
		c.Before.Version(),
	).Exec(oneRow(c, table))
}
