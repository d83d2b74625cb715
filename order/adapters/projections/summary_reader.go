package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
)

// SummaryReader serves the order list from order_summaries
// (app.OrderSummaries).
type SummaryReader struct {
	db eventstore.DB
}

// NewSummaryReader returns a reader of the order_summaries table in db.
func NewSummaryReader(db eventstore.DB) *SummaryReader {
	return &SummaryReader{db: db}
}

// ListOrders returns up to limit orders that match filter, newest first,
// after the cursor. Each condition is added only when used, so that every
// query shape gets a plan on its own index (see the migration).
func (r *SummaryReader) ListOrders(ctx context.Context, filter app.OrderFilter, after *app.OrderCursor, limit int) ([]app.OrderSummary, error) {
	var conditions []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if filter.CustomerID != "" {
		conditions = append(conditions, "customer_id = "+arg(filter.CustomerID))
	}
	if filter.Status != "" {
		conditions = append(conditions, "status = "+arg(string(filter.Status)))
	}
	if after != nil {
		conditions = append(conditions, fmt.Sprintf("(placed_at, order_id) < (%s, %s)", arg(after.PlacedAt), arg(after.OrderID)))
	}
	where := ""
	if len(conditions) > 0 {
		where = "WHERE " + strings.Join(conditions, " AND ")
	}
	rows, _ := r.db.Query(ctx, `
		SELECT order_id, customer_id, status, currency, total, item_count, placed_at, updated_at, version
		FROM order_summaries `+where+`
		ORDER BY placed_at DESC, order_id DESC
		LIMIT `+arg(limit), args...)
	summaries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (app.OrderSummary, error) {
		var s app.OrderSummary
		err := row.Scan(&s.OrderID, &s.CustomerID, &s.Status, &s.Currency, &s.Total, &s.ItemCount, &s.PlacedAt, &s.UpdatedAt, &s.Version)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read order_summaries: %w", err)
	}
	return summaries, nil
}

// StatusCounts reads order_daily_stats, which is small (a row per day,
// status and currency), rather than counting order_summaries.
type StatusCounts struct {
	db eventstore.DB
}

// NewStatusCounts returns a reader of order counts by status in db.
func NewStatusCounts(db eventstore.DB) StatusCounts { return StatusCounts{db: db} }

// CountByStatus returns how many orders are in each status now.
func (c StatusCounts) CountByStatus(ctx context.Context) (map[order.Status]int64, error) {
	rows, _ := c.db.Query(ctx, `SELECT status, sum(orders)::bigint FROM order_daily_stats GROUP BY status`)
	counts := map[order.Status]int64{}
	var status order.Status
	var n int64
	_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read order_daily_stats: %w", err)
	}
	return counts, nil
}

// AwaitingPaymentSince returns up to limit orders still placed that were
// placed before t, oldest first, after the cursor if there is one
// (app.Deadlines), on the index on (status, placed_at, order_id).
func (r *SummaryReader) AwaitingPaymentSince(ctx context.Context, t time.Time, after *app.OrderCursor, limit int) ([]app.OrderCursor, error) {
	from := app.OrderCursor{}
	if after != nil {
		from = *after
	}
	rows, _ := r.db.Query(ctx, `SELECT placed_at, order_id FROM order_summaries
		WHERE status = $1 AND placed_at < $2 AND (placed_at, order_id) > ($3, $4)
		ORDER BY placed_at, order_id LIMIT $5`, string(order.StatusPlaced), t, from.PlacedAt, from.OrderID, limit)
	due, err := pgx.CollectRows(rows, pgx.RowToStructByPos[app.OrderCursor])
	if err != nil {
		return nil, fmt.Errorf("read order_summaries: %w", err)
	}
	return due, nil
}

// CountOverdue counts the orders still placed since before paymentBefore,
// and still refund_requested since before refundBefore (app.Deadlines). A
// refund_requested order's last event is the request, so its updated_at is
// when the refund was asked for.
func (r *SummaryReader) CountOverdue(ctx context.Context, paymentBefore, refundBefore time.Time) (map[order.Status]int64, error) {
	var placed, refunding int64
	err := r.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = $1 AND placed_at < $3),
			count(*) FILTER (WHERE status = $2 AND updated_at < $4)
		FROM order_summaries WHERE status IN ($1, $2)`,
		string(order.StatusPlaced), string(order.StatusRefundRequested), paymentBefore, refundBefore).Scan(&placed, &refunding)
	if err != nil {
		return nil, fmt.Errorf("count overdue orders: %w", err)
	}
	return map[order.Status]int64{order.StatusPlaced: placed, order.StatusRefundRequested: refunding}, nil
}
