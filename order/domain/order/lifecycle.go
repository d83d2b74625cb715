package order

import (
	"fmt"
	"time"

	"github.com/es-outbox/reference/shared/text"
)

// Cancel cancels the order on the customer's request. An unpaid order is
// cancelled; a paid one asks for a refund. Cancelling twice is an error.
func (o *Order) Cancel(reason string, now time.Time) error {
	if problem := text.Problem(reason, MaxReasonLength); problem != "" {
		return invalid("reason", "%s", problem)
	}
	switch o.status {
	case StatusPlaced:
		o.record(OrderCancelled{OrderID: o.id, Reason: reason, At: now.UTC()})
	case StatusPaid:
		o.requestRefund(reason, now)
	case StatusCancelled, StatusRefundRequested, StatusRefunded:
		return o.transitionError("cancel", "it is already cancelled")
	case StatusPaymentFailed:
		return o.transitionError("cancel", "its payment failed, so there is nothing to cancel")
	}
	return nil
}

// RecordPaymentSucceeded applies the payment service's charge. A payment
// that arrives after the order was cancelled is refunded. The same outcome
// delivered again changes nothing.
func (o *Order) RecordPaymentSucceeded(chargeID string, amount int64, now time.Time) error {
	paid := OrderPaid{OrderID: o.id, ChargeID: chargeID, Amount: amount, At: now.UTC()}
	switch o.status {
	case StatusPlaced:
		o.record(paid)
	case StatusCancelled:
		o.record(paid)
		o.requestRefund("payment arrived after the order was cancelled", now)
	case StatusPaid, StatusRefundRequested, StatusRefunded:
		// a redelivered outcome: already applied
	case StatusPaymentFailed:
		if o.timedOut {
			o.record(paid)
			o.requestRefund("payment arrived after the order's deadline", now)
			return nil
		}
		return o.transitionError("record a successful payment for", "its payment was declined")
	}
	return nil
}

// TimeOutPayment fails an order that has waited for its payment outcome for
// timeout or longer: the payment service refused, lost or never got it. An
// order that no longer waits, or not for that long yet, is left alone, so
// any number of replicas may ask: the first one's event counts, and the
// others find the order moved on.
func (o *Order) TimeOutPayment(timeout time.Duration, now time.Time) {
	deadline := o.placedAt.Add(timeout)
	if o.status != StatusPlaced || now.Before(deadline) {
		return
	}
	o.record(OrderPaymentTimedOut{OrderID: o.id, Reason: fmt.Sprintf("no payment outcome within %s", timeout),
		Deadline: deadline.UTC(), At: now.UTC()})
}

// RecordPaymentDeclined applies a declined charge. For a cancelled order
// there is nothing left to do; a redelivery changes nothing.
func (o *Order) RecordPaymentDeclined(reason string, now time.Time) error {
	switch o.status {
	case StatusPlaced:
		o.record(OrderPaymentFailed{OrderID: o.id, Reason: reason, At: now.UTC()})
	case StatusCancelled, StatusPaymentFailed:
		// nothing to do, or a redelivered outcome
	default:
		return o.transitionError("record a declined payment for", "it is "+string(o.status))
	}
	return nil
}

// RecordRefund applies the payment service's refund.
func (o *Order) RecordRefund(refundID string, amount int64, now time.Time) error {
	switch o.status {
	case StatusRefundRequested:
		o.record(OrderRefunded{OrderID: o.id, RefundID: refundID, Amount: amount, At: now.UTC()})
	case StatusRefunded:
		// a redelivered outcome
	default:
		return o.transitionError("record a refund for", "no refund was requested")
	}
	return nil
}

func (o *Order) requestRefund(reason string, now time.Time) {
	o.record(OrderRefundRequested{OrderID: o.id, Amount: o.total, Currency: o.currency, Reason: reason, At: now.UTC()})
}

func (o *Order) transitionError(action, why string) error {
	return &TransitionError{OrderID: o.id, Status: o.status, Message: "cannot " + action + " order " + o.id + ": " + why}
}
