// Package order is the Order aggregate: pure Go, no I/O. Its state is folded
// from its events, and each command either records new events or returns an
// error.
package order

import (
	"fmt"
	"time"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/text"
)

// Limits that keep an order, and the event that records it, reasonably sized.
const (
	MaxLineItems = 100
	MaxQuantity  = 10_000
	MaxUnitPrice = 1_000_000_000 // 10 million in a currency with cents
	maxIDLength  = 100
	maxSKULength = 64
	// MaxReasonLength bounds a reason a client gives (a cancellation's).
	MaxReasonLength = 500
	currencyLength  = 3
)

// Status is where an order is in its lifecycle:
//
//	placed ─► paid ─► refund_requested ─► refunded      (cancel after payment)
//	placed ─► payment_failed                            (declined or refused)
//	placed ─► payment_failed by its deadline [─► refund_requested ─► refunded if a payment still arrives]
//	placed ─► cancelled [─► refund_requested ─► refunded if a payment still arrives]
type Status string

// The statuses of an order.
const (
	StatusPlaced          Status = "placed"
	StatusPaid            Status = "paid"
	StatusPaymentFailed   Status = "payment_failed"
	StatusCancelled       Status = "cancelled"
	StatusRefundRequested Status = "refund_requested"
	StatusRefunded        Status = "refunded"
)

// LineItem is a product line: quantity times a unit price in minor units.
// It is the contract's line item, so the order records its items in
// OrderPlaced, and rebuilds them from it, as they are: no copy either way.
type LineItem = contracts.LineItem

// PlaceOrder is the command to place a new order.
type PlaceOrder struct {
	OrderID    string
	CustomerID string
	Items      []LineItem
	Currency   string
}

// Event is a domain event of the order; a repository stores it as JSON.
type Event interface {
	EventType() string
	SchemaVersion() int
}

// Order is the aggregate. Its fields are private: it changes only through
// commands, and is rebuilt only from its events.
type Order struct {
	id         string
	customerID string
	items      []LineItem
	currency   string
	total      int64
	status     Status
	placedAt   time.Time
	chargeID   string
	reason     string // why the order reached its status, if someone said
	timedOut   bool   // failed by its deadline, not by a payment outcome

	version int64   // events applied so far, including changes
	changes []Event // recorded by commands, not yet stored
}

// Place validates cmd and returns a new order with its OrderPlaced event.
func Place(cmd PlaceOrder, now time.Time) (*Order, error) {
	total, err := validate(cmd)
	if err != nil {
		return nil, err
	}
	items := append([]LineItem(nil), cmd.Items...) // the command's slice stays the caller's
	o := &Order{}
	o.record(OrderPlaced{
		OrderID: cmd.OrderID, CustomerID: cmd.CustomerID, Items: items,
		Currency: cmd.Currency, Total: total, PlacedAt: now.UTC(),
	})
	return o, nil
}

func validate(cmd PlaceOrder) (total int64, err error) {
	switch {
	case cmd.OrderID == "":
		return 0, invalid("order_id", "is required")
	case cmd.CustomerID == "":
		return 0, invalid("customer_id", "is required")
	case text.Problem(cmd.CustomerID, maxIDLength) != "":
		return 0, invalid("customer_id", "%s", text.Problem(cmd.CustomerID, maxIDLength))
	case len(cmd.Items) == 0:
		return 0, invalid("items", "must hold at least one line item")
	case len(cmd.Items) > MaxLineItems:
		return 0, invalid("items", "holds %d line items, at most %d are allowed", len(cmd.Items), MaxLineItems)
	case len(cmd.Currency) != currencyLength || !isoCurrencies[cmd.Currency]:
		return 0, invalid("currency", "%q is not an ISO 4217 currency code such as EUR or USD", cmd.Currency)
	}
	for i, it := range cmd.Items {
		field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
		switch {
		case it.SKU == "":
			return 0, invalid(field("sku"), "is required")
		case text.Problem(it.SKU, maxSKULength) != "":
			return 0, invalid(field("sku"), "%s", text.Problem(it.SKU, maxSKULength))
		case it.Quantity <= 0:
			return 0, invalid(field("quantity"), "must be greater than 0")
		case it.Quantity > MaxQuantity:
			return 0, invalid(field("quantity"), "must be at most %d", MaxQuantity)
		case it.UnitPrice < 0:
			return 0, invalid(field("unit_price"), "must not be negative")
		case it.UnitPrice > MaxUnitPrice:
			return 0, invalid(field("unit_price"), "must be at most %d minor units", MaxUnitPrice)
		}
		// Cannot overflow: 100 items × 10^4 × 10^9 < 2^63.
		total += it.Quantity * it.UnitPrice
	}
	if total == 0 {
		// An order with nothing to charge would wait for a payment that
		// the payment service refuses to make: refused here, at the door.
		return 0, invalid("items", "the order's total is 0: at least one item must have a unit_price above 0")
	}
	return total, nil
}

// FromEvents rebuilds an order from its stored events, oldest first.
func FromEvents(events []Event) (*Order, error) {
	o := &Order{}
	for _, e := range events {
		if err := o.apply(e); err != nil {
			return nil, err
		}
		o.version++
	}
	return o, nil
}

func (o *Order) record(e Event) {
	if err := o.apply(e); err != nil {
		panic(err) // a command recorded an event its own aggregate cannot apply
	}
	o.version++
	o.changes = append(o.changes, e)
}

func (o *Order) apply(e Event) error {
	switch e := e.(type) {
	case OrderPlaced:
		o.id, o.customerID, o.currency, o.total = e.OrderID, e.CustomerID, e.Currency, e.Total
		o.placedAt, o.status = e.PlacedAt, StatusPlaced
		o.items = e.Items
	case OrderPaid:
		o.status, o.chargeID, o.reason = StatusPaid, e.ChargeID, ""
	case OrderPaymentFailed:
		o.status, o.reason = StatusPaymentFailed, e.Reason
	case OrderPaymentTimedOut:
		o.status, o.reason, o.timedOut = StatusPaymentFailed, e.Reason, true
	case OrderCancelled:
		o.status, o.reason = StatusCancelled, e.Reason
	case OrderRefundRequested:
		o.status, o.reason = StatusRefundRequested, e.Reason
	case OrderRefunded:
		o.status = StatusRefunded
	default:
		return fmt.Errorf("order: cannot apply event %T", e)
	}
	return nil
}

// Changes are the events recorded since the order was loaded or last
// stored.
func (o *Order) Changes() []Event { return o.changes }

// MarkCommitted tells the order its changes are stored: the repository
// calls it after appending them, so the same order can take the next
// command without being loaded again.
func (o *Order) MarkCommitted() { o.changes = nil }

// OriginalVersion is the stream version the order was loaded at or last
// stored at: the version its changes must be appended after.
func (o *Order) OriginalVersion() int64 { return o.version - int64(len(o.changes)) }

// Version is the number of events the order is made of, changes included.
func (o *Order) Version() int64 { return o.version }

func (o *Order) ID() string          { return o.id }
func (o *Order) CustomerID() string  { return o.customerID }
func (o *Order) Items() []LineItem   { return append([]LineItem(nil), o.items...) }
func (o *Order) Currency() string    { return o.currency }
func (o *Order) Total() int64        { return o.total }
func (o *Order) Status() Status      { return o.status }
func (o *Order) PlacedAt() time.Time { return o.placedAt }

// Reason says why the order reached its status (a payment declined, a
// cancellation, a refund), or "" when nobody said.
func (o *Order) Reason() string { return o.reason }

// The order's events. Their payloads are the public contracts that other
// services consume (the event store is the outbox).
type (
	OrderPlaced          contracts.OrderPlaced
	OrderPaid            contracts.OrderPaid
	OrderPaymentFailed   contracts.OrderPaymentFailed
	OrderPaymentTimedOut contracts.OrderPaymentTimedOut
	OrderCancelled       contracts.OrderCancelled
	OrderRefundRequested contracts.OrderRefundRequested
	OrderRefunded        contracts.OrderRefunded
)

func (OrderPlaced) EventType() string           { return contracts.OrderPlacedType }
func (OrderPlaced) SchemaVersion() int          { return contracts.OrderPlacedVersion }
func (OrderPaid) EventType() string             { return contracts.OrderPaidType }
func (OrderPaid) SchemaVersion() int            { return contracts.OrderPaidVersion }
func (OrderPaymentFailed) EventType() string    { return contracts.OrderPaymentFailedType }
func (OrderPaymentFailed) SchemaVersion() int   { return contracts.OrderPaymentFailedVersion }
func (OrderPaymentTimedOut) EventType() string  { return contracts.OrderPaymentTimedOutType }
func (OrderPaymentTimedOut) SchemaVersion() int { return contracts.OrderPaymentTimedOutVersion }
func (OrderCancelled) EventType() string        { return contracts.OrderCancelledType }
func (OrderCancelled) SchemaVersion() int       { return contracts.OrderCancelledVersion }
func (OrderRefundRequested) EventType() string  { return contracts.OrderRefundRequestedType }
func (OrderRefundRequested) SchemaVersion() int { return contracts.OrderRefundRequestedVersion }
func (OrderRefunded) EventType() string         { return contracts.OrderRefundedType }
func (OrderRefunded) SchemaVersion() int        { return contracts.OrderRefundedVersion }
