// Package payment is the Payment aggregate: one per order, pure Go. Its event
// stream makes charging idempotent: a redelivered order event finds the
// stream and the step it reached, and nothing is done twice.
//
//	requested ─► succeeded ─► refund_requested ─► refunded
//	requested ─► declined        by the gateway, or refused by the Policy
package payment

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
)

// Status is where a payment is.
type Status string

// The statuses of a payment.
const (
	StatusRequested       Status = "requested"
	StatusSucceeded       Status = "succeeded"
	StatusDeclined        Status = "declined"
	StatusRefundRequested Status = "refund_requested"
	StatusRefunded        Status = "refunded"
)

// ErrInvalidRequest means a payment request names no payment at all (no
// order id), so there is no stream to record an outcome on: resending it
// will not help. A request the service refuses on its merits is a decline
// instead (see Policy).
var ErrInvalidRequest = errors.New("invalid payment request")

// ErrNotFound means no payment exists for the order.
var ErrNotFound = errors.New("payment not found")

// ErrCannotRefund means a refund was asked for a payment that took no money.
var ErrCannotRefund = errors.New("payment cannot be refunded")

// Request asks to charge an order's total.
type Request struct {
	OrderID  string
	Amount   int64 // minor units
	Currency string
}

// Validate rejects requests that name no payment: without an order id
// there is no stream to record a decline on.
func (r Request) Validate() error {
	if r.OrderID == "" {
		return fmt.Errorf("%w: no order id", ErrInvalidRequest)
	}
	return nil
}

// Policy is what the payment service agrees to charge. A well-formed request
// outside it is refused on its merits: a decline with a reason that flows
// back to the order like the gateway's, not a message for the poison queue.
type Policy struct {
	// Currencies are the ISO 4217 codes the service charges in; empty
	// means any code of three capital letters.
	Currencies []string
}

// Refusal says why the policy refuses req, or "" if it does not.
func (p Policy) Refusal(req Request) string {
	switch {
	case req.Amount <= 0:
		return fmt.Sprintf("amount %d is not positive: there is nothing to charge", req.Amount)
	case !isCurrencyCode(req.Currency):
		return fmt.Sprintf("currency %q is not an ISO 4217 code", req.Currency)
	case len(p.Currencies) > 0 && !slices.Contains(p.Currencies, req.Currency):
		return fmt.Sprintf("currency %s is not supported (supported: %s)", req.Currency, strings.Join(p.Currencies, ", "))
	}
	return ""
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// Charge is the gateway's answer to a charge.
type Charge struct {
	ID            string
	Approved      bool
	DeclineReason string
}

// Refund is the gateway's answer to a refund.
type Refund struct {
	ID string
}

// Event is a payment event; a repository stores it as JSON.
type Event interface {
	EventType() string
	SchemaVersion() int
}

// The payment's events; their payloads are the public contracts.
type (
	PaymentRequested       contracts.PaymentRequested
	PaymentSucceeded       contracts.PaymentSucceeded
	PaymentDeclined        contracts.PaymentDeclined
	PaymentRefundRequested contracts.PaymentRefundRequested
	PaymentRefunded        contracts.PaymentRefunded
)

func (PaymentRequested) EventType() string        { return contracts.PaymentRequestedType }
func (PaymentRequested) SchemaVersion() int       { return contracts.PaymentRequestedVersion }
func (PaymentSucceeded) EventType() string        { return contracts.PaymentSucceededType }
func (PaymentSucceeded) SchemaVersion() int       { return contracts.PaymentSucceededVersion }
func (PaymentDeclined) EventType() string         { return contracts.PaymentDeclinedType }
func (PaymentDeclined) SchemaVersion() int        { return contracts.PaymentDeclinedVersion }
func (PaymentRefundRequested) EventType() string  { return contracts.PaymentRefundRequestedType }
func (PaymentRefundRequested) SchemaVersion() int { return contracts.PaymentRefundRequestedVersion }
func (PaymentRefunded) EventType() string         { return contracts.PaymentRefundedType }
func (PaymentRefunded) SchemaVersion() int        { return contracts.PaymentRefundedVersion }

// Payment is the aggregate.
type Payment struct {
	orderID  string
	amount   int64
	currency string
	status   Status
	chargeID string
	reason   string
	refundID string
	history  []Event

	version int64
	changes []Event
}

// New is the payment of an order that has none yet: nothing requested, no
// events. The repository hands it to the first delivery of the order.
func New(orderID string) *Payment { return &Payment{orderID: orderID} }

// Requested is a new payment of req's order, requested (see Request).
func Requested(req Request, policy Policy, now time.Time) (*Payment, error) {
	p := New(req.OrderID)
	if err := p.Request(req, policy, now); err != nil {
		return nil, err
	}
	return p, nil
}

// Request starts the payment, once: a payment that has started already
// (an earlier delivery of the same order) is left as it is. A request the
// policy refuses is declined at once, with the refusal as its reason, and
// never reaches the gateway.
func (p *Payment) Request(req Request, policy Policy, now time.Time) error {
	if p.version > 0 {
		return nil
	}
	if err := req.Validate(); err != nil {
		return err
	}
	p.record(PaymentRequested{OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, At: now.UTC()})
	if reason := policy.Refusal(req); reason != "" {
		p.record(PaymentDeclined{OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, Reason: reason, At: now.UTC()})
	}
	return nil
}

// RecordCharge records the gateway's answer. A payment that already has an
// outcome keeps it (the gateway answers a repeated charge with the first).
func (p *Payment) RecordCharge(charge Charge, now time.Time) {
	if p.status != StatusRequested {
		return
	}
	if charge.Approved {
		p.record(PaymentSucceeded{OrderID: p.orderID, Amount: p.amount, Currency: p.currency, ChargeID: charge.ID, At: now.UTC()})
	} else {
		p.record(PaymentDeclined{OrderID: p.orderID, Amount: p.amount, Currency: p.currency, Reason: charge.DeclineReason, At: now.UTC()})
	}
}

// RequestRefund starts refunding a successful payment; asking again changes
// nothing. A payment that took no money cannot be refunded.
func (p *Payment) RequestRefund(now time.Time) error {
	switch p.status {
	case StatusSucceeded:
		p.record(PaymentRefundRequested{OrderID: p.orderID, Amount: p.amount, At: now.UTC()})
	case StatusRefundRequested, StatusRefunded:
	case "":
		return fmt.Errorf("%w: order %s", ErrNotFound, p.orderID)
	default:
		return fmt.Errorf("%w: the payment of order %s is %s", ErrCannotRefund, p.orderID, p.status)
	}
	return nil
}

// RecordRefund records the gateway's refund; a second one changes nothing.
func (p *Payment) RecordRefund(refund Refund, now time.Time) {
	if p.status == StatusRefundRequested {
		p.record(PaymentRefunded{OrderID: p.orderID, Amount: p.amount, RefundID: refund.ID, At: now.UTC()})
	}
}

// FromEvents rebuilds a payment from its stored events.
func FromEvents(events []Event) (*Payment, error) {
	p := &Payment{}
	for _, e := range events {
		if err := p.apply(e); err != nil {
			return nil, err
		}
		p.version++
	}
	return p, nil
}

func (p *Payment) record(e Event) {
	if err := p.apply(e); err != nil {
		panic(err)
	}
	p.version++
	p.changes = append(p.changes, e)
}

func (p *Payment) apply(e Event) error {
	switch e := e.(type) {
	case PaymentRequested:
		p.orderID, p.amount, p.currency, p.status = e.OrderID, e.Amount, e.Currency, StatusRequested
	case PaymentSucceeded:
		p.chargeID, p.status = e.ChargeID, StatusSucceeded
	case PaymentDeclined:
		p.reason, p.status = e.Reason, StatusDeclined
	case PaymentRefundRequested:
		p.status = StatusRefundRequested
	case PaymentRefunded:
		p.refundID, p.status = e.RefundID, StatusRefunded
	default:
		return fmt.Errorf("payment: cannot apply event %T", e)
	}
	p.history = append(p.history, e)
	return nil
}

// Changes are the events recorded since the payment was loaded or last
// stored.
func (p *Payment) Changes() []Event { return p.changes }

// MarkCommitted tells the payment its changes are stored: the repository
// calls it after appending them, so the same payment can take the next
// command without being loaded again.
func (p *Payment) MarkCommitted() { p.changes = nil }

// OriginalVersion is the stream version the changes must be appended after.
func (p *Payment) OriginalVersion() int64 { return p.version - int64(len(p.changes)) }

// Version is the number of events the payment is made of, changes included.
func (p *Payment) Version() int64 { return p.version }

// History is every event of the payment, oldest first.
func (p *Payment) History() []Event { return append([]Event(nil), p.history...) }

func (p *Payment) OrderID() string       { return p.orderID }
func (p *Payment) Amount() int64         { return p.amount }
func (p *Payment) Currency() string      { return p.currency }
func (p *Payment) Status() Status        { return p.status }
func (p *Payment) ChargeID() string      { return p.chargeID }
func (p *Payment) DeclineReason() string { return p.reason }
func (p *Payment) RefundID() string      { return p.refundID }
