package projections

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// OrderSummaries keeps one row per order in order_summaries: what
// GET /v1/orders lists.
var OrderSummaries = Projection{Name: "order_summaries", apply: applyOrderSummaries}

// summaryRows are order_summaries rows as columns, the shape unnest takes.
type summaryRows struct {
	orderID, customerID, status, currency []string
	total, itemCount, version             []int64
	placedAt, updatedAt                   []time.Time
	versionBefore                         []int64 // what an update expects the row's version to be
}

func (r *summaryRows) add(c Change) {
	o := c.After
	var units int64
	for _, it := range o.Items() {
		units += it.Quantity
	}
	r.orderID, r.customerID = append(r.orderID, o.ID()), append(r.customerID, o.CustomerID())
	r.status, r.currency = append(r.status, string(o.Status())), append(r.currency, o.Currency())
	r.total, r.itemCount, r.version = append(r.total, o.Total()), append(r.itemCount, units), append(r.version, c.Version)
	r.placedAt, r.updatedAt = append(r.placedAt, o.PlacedAt()), append(r.updatedAt, c.Event.RecordedAt)
	if c.Before != nil {
		r.versionBefore = append(r.versionBefore, c.VersionBefore)
	}
}

func applyOrderSummaries(b *pgx.Batch, table string, changes []Change) {
	var placed, updated summaryRows
	for _, c := range changes {
		if c.Before == nil {
			placed.add(c)
		} else {
			updated.add(c)
		}
	}
	const columns = `unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamptz[], $8::timestamptz[], $9::bigint[]`
	if n := len(placed.orderID); n > 0 {
		// An order placed twice fails on the primary key.
		b.Queue(`INSERT INTO `+table+` (order_id, customer_id, status, currency, total, item_count, placed_at, updated_at, version)
			SELECT * FROM `+columns+`)`,
			placed.orderID, placed.customerID, placed.status, placed.currency, placed.total, placed.itemCount,
			placed.placedAt, placed.updatedAt, placed.version)
	}
	if n := len(updated.orderID); n > 0 {
		b.Queue(`UPDATE `+table+` AS s SET customer_id = u.customer_id, status = u.status, currency = u.currency, total = u.total,
				item_count = u.item_count, placed_at = u.placed_at, updated_at = u.updated_at, version = u.version
			FROM `+columns+`, $10::bigint[])
				AS u (order_id, customer_id, status, currency, total, item_count, placed_at, updated_at, version, version_before)
			WHERE s.order_id = u.order_id AND s.version = u.version_before`,
			updated.orderID, updated.customerID, updated.status, updated.currency, updated.total, updated.itemCount,
			updated.placedAt, updated.updatedAt, updated.version, updated.versionBefore,
		).Exec(rows(changes, table, n))
	}
}
