package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/es-outbox/reference/order/domain/order"
)

// Deadlines finds the orders that wait for another service longer than
// they should. It reads a read model derived from the event store, not
// timers in memory: a deadline survives restarts, and every replica sees
// the same ones.
type Deadlines interface {
	// AwaitingPaymentSince returns up to limit orders still placed that
	// were placed before t, oldest first, after the cursor if there is one.
	AwaitingPaymentSince(ctx context.Context, t time.Time, after *OrderCursor, limit int) ([]OrderCursor, error)
	// CountOverdue counts the orders placed before paymentBefore that are
	// still placed, and those whose refund was requested before
	// refundBefore and has not completed.
	CountOverdue(ctx context.Context, paymentBefore, refundBefore time.Time) (map[order.Status]int64, error)
}

// WithDeadlines returns the application finding overdue orders with d.
func (a *Application) WithDeadlines(d Deadlines) *Application {
	with := *a
	with.deadlines = d
	return &with
}

// TimeOutPayments fails every order that has waited for its payment outcome
// for timeout or longer, each with an OrderPaymentTimedOut of its own, and
// returns how many it failed. Replicas may run it at once: the event store
// lets one of them record each timeout, once. An order that cannot be
// loaded (it holds an event of a newer version) is left for a replica that
// can, and does not stop the others.
func (a *Application) TimeOutPayments(ctx context.Context, timeout time.Duration) (timedOut int, err error) {
	if a.deadlines == nil {
		return 0, errors.New("app: no read model to find deadlines in (see WithDeadlines)")
	}
	const page = 100
	var errs []error
	var after *OrderCursor
	for {
		due, err := a.deadlines.AwaitingPaymentSince(ctx, a.now().Add(-timeout), after, page)
		if err != nil {
			return timedOut, errors.Join(append(errs, fmt.Errorf("find orders past their payment deadline: %w", err))...)
		}
		for _, d := range due {
			var took bool // by the attempt that was stored
			_, err := a.update(ctx, "TimeOutPayment", d.OrderID, order.AnyVersion, func(o *order.Order) error {
				before := o.Version()
				o.TimeOutPayment(timeout, a.now())
				took = o.Version() > before
				return nil
			})
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("time out order %s: %w", d.OrderID, err))
			case took:
				timedOut++
			}
		}
		// Orders that failed stay in the read model as placed: the next
		// page starts after them, so they never hold the others back.
		if len(due) < page || ctx.Err() != nil {
			break
		}
		after = &due[len(due)-1]
	}
	return timedOut, errors.Join(errs...)
}

// OverdueOrders counts the orders past a deadline: still placed after
// paymentTimeout, still refund_requested after refundTimeout.
func (a *Application) OverdueOrders(ctx context.Context, paymentTimeout, refundTimeout time.Duration) (map[order.Status]int64, error) {
	if a.deadlines == nil {
		return nil, errors.New("app: no read model to find deadlines in (see WithDeadlines)")
	}
	now := a.now()
	return a.deadlines.CountOverdue(ctx, now.Add(-paymentTimeout), now.Add(-refundTimeout))
}
