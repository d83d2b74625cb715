// Package payment is the Payment aggregate: one per order, pure Go. A payment
// is requested for an order's amount and ends succeeded or declined; its
// event stream is what makes charging idempotent, since a second request for
// the same order finds the stream already there.
package payment

import (
	"errors"
	"fmt"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
)

// Status is the outcome of a payment.
type Status string

// Statuses a stored payment can have.
const (
	StatusSucceeded Status = "succeeded"
	StatusDeclined  Status = "declined"
)

// ErrInvalidRequest means a payment request can never succeed: resending it
// will not help.
var ErrInvalidRequest = errors.New("invalid payment request")

// ErrNotFound means no payment exists for the order.
var ErrNotFound = errors.New("payment not found")

// Request asks to charge an order's total.
type Request struct {
	OrderID  string
	Amount   int64 // minor units
	Currency string
}

// Validate rejects requests no gateway could charge.
func (r Request) Validate() error {
	switch {
	case r.OrderID == "":
		return fmt.Errorf("%w: no order id", ErrInvalidRequest)
	case r.Amount <= 0:
		return fmt.Errorf("%w: amount %d is not positive", ErrInvalidRequest, r.Amount)
	case len(r.Currency) != 3:
		return fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidRequest, r.Currency)
	}
	return nil
}

// Charge is the gateway's answer to a charge.
type Charge struct {
	ID            string
	Approved      bool
	DeclineReason string
}

// Event is a payment event; a repository stores it as JSON.
type Event interface {
	EventType() string
	SchemaVersion() int
}

// PaymentSucceeded records a successful charge.
type PaymentSucceeded contracts.PaymentSucceeded

func (PaymentSucceeded) EventType() string  { return contracts.PaymentSucceededType }
func (PaymentSucceeded) SchemaVersion() int { return contracts.PaymentSucceededVersion }

// PaymentDeclined records a declined charge.
type PaymentDeclined contracts.PaymentDeclined

func (PaymentDeclined) EventType() string  { return contracts.PaymentDeclinedType }
func (PaymentDeclined) SchemaVersion() int { return contracts.PaymentDeclinedVersion }

// Payment is the aggregate.
type Payment struct {
	orderID  string
	amount   int64
	currency string
	status   Status
	chargeID string
	reason   string

	version int64
	changes []Event
}

// Record turns the gateway's answer to req into a new payment with its
// outcome event.
func Record(req Request, charge Charge, now time.Time) (*Payment, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	p := &Payment{}
	if charge.Approved {
		p.record(PaymentSucceeded{OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, ChargeID: charge.ID, At: now.UTC()})
	} else {
		p.record(PaymentDeclined{OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, Reason: charge.DeclineReason, At: now.UTC()})
	}
	return p, nil
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
	case PaymentSucceeded:
		p.orderID, p.amount, p.currency, p.chargeID, p.status = e.OrderID, e.Amount, e.Currency, e.ChargeID, StatusSucceeded
	case PaymentDeclined:
		p.orderID, p.amount, p.currency, p.reason, p.status = e.OrderID, e.Amount, e.Currency, e.Reason, StatusDeclined
	default:
		return fmt.Errorf("payment: cannot apply event %T", e)
	}
	return nil
}

// Changes are the events recorded since the payment was loaded.
func (p *Payment) Changes() []Event { return p.changes }

// OriginalVersion is the stream version the changes must be appended after.
func (p *Payment) OriginalVersion() int64 { return p.version - int64(len(p.changes)) }

func (p *Payment) OrderID() string       { return p.orderID }
func (p *Payment) Amount() int64         { return p.amount }
func (p *Payment) Currency() string      { return p.currency }
func (p *Payment) Status() Status        { return p.status }
func (p *Payment) ChargeID() string      { return p.chargeID }
func (p *Payment) DeclineReason() string { return p.reason }
