// Package contracts holds what the two services agree on without importing
// each other: the events that cross service boundaries, and the names they
// travel under (topics, consumer groups, metadata and header keys, in
// names.go). Since the event store is the outbox, a stored event is exactly
// what its consumers receive: these structs are both the services' stored
// events and the other side's input, so the two services agree by
// construction. Pure Go: it imports nothing but the standard library.
//
// Type names never change. A breaking change to a payload gets a new schema
// version, and readers upcast older versions to the current shape.
package contracts

import "time"

// Order events, published on order.events with the order's stream id as key.
const (
	OrderPlacedType           = "order.OrderPlaced"
	OrderPlacedVersion        = 2 // v1 had no total: see upcast.go
	OrderPaidType             = "order.OrderPaid"
	OrderPaidVersion          = 1
	OrderPaymentFailedType    = "order.OrderPaymentFailed"
	OrderPaymentFailedVersion = 1
	// OrderPaymentTimedOutType: the order gave up waiting for its payment.
	OrderPaymentTimedOutType    = "order.PaymentTimedOut"
	OrderPaymentTimedOutVersion = 1
	OrderCancelledType          = "order.OrderCancelled"
	OrderCancelledVersion       = 1
	// OrderRefundRequestedType asks the payment service to refund the order.
	OrderRefundRequestedType    = "order.RefundRequested"
	OrderRefundRequestedVersion = 1
	OrderRefundedType           = "order.OrderRefunded"
	OrderRefundedVersion        = 1
)

// Payment events, published on payment.events with the payment's stream id
// ("payment-<order id>") as key.
const (
	PaymentRequestedType          = "payment.PaymentRequested"
	PaymentRequestedVersion       = 1
	PaymentSucceededType          = "payment.PaymentSucceeded"
	PaymentSucceededVersion       = 1
	PaymentDeclinedType           = "payment.PaymentDeclined"
	PaymentDeclinedVersion        = 1
	PaymentRefundRequestedType    = "payment.RefundRequested"
	PaymentRefundRequestedVersion = 1
	PaymentRefundedType           = "payment.PaymentRefunded"
	PaymentRefundedVersion        = 1
)

// OrderPlaced says a customer placed an order that now awaits payment.
type OrderPlaced struct {
	OrderID    string     `json:"order_id"`
	CustomerID string     `json:"customer_id"`
	Items      []LineItem `json:"items"`
	Currency   string     `json:"currency"`
	// Total is the sum of quantity × unit price, in minor units (cents).
	Total    int64     `json:"total"`
	PlacedAt time.Time `json:"placed_at"`
}

// LineItem is one product line of an order; prices are in minor units.
type LineItem struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// OrderPaid says the order's payment succeeded.
type OrderPaid struct {
	OrderID  string    `json:"order_id"`
	ChargeID string    `json:"charge_id"`
	Amount   int64     `json:"amount"`
	At       time.Time `json:"at"`
}

// OrderPaymentFailed says the order's payment was declined.
type OrderPaymentFailed struct {
	OrderID string    `json:"order_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// OrderPaymentTimedOut says no payment outcome came before the order's
// deadline, so the order service failed the order itself. A payment that
// lands afterwards is refunded.
type OrderPaymentTimedOut struct {
	OrderID  string    `json:"order_id"`
	Reason   string    `json:"reason"`
	Deadline time.Time `json:"deadline"`
	At       time.Time `json:"at"`
}

// OrderCancelled says the order was cancelled before it was paid.
type OrderCancelled struct {
	OrderID string    `json:"order_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// OrderRefundRequested says a paid order was cancelled (or a payment arrived
// after the order was cancelled) and its amount must be refunded.
type OrderRefundRequested struct {
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// OrderRefunded says the order's payment was refunded.
type OrderRefunded struct {
	OrderID  string    `json:"order_id"`
	RefundID string    `json:"refund_id"`
	Amount   int64     `json:"amount"`
	At       time.Time `json:"at"`
}

// PaymentRequested says the payment service will charge the order; it is
// the first event of every payment stream.
type PaymentRequested struct {
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	At       time.Time `json:"at"`
}

// PaymentSucceeded says the order's amount was charged.
type PaymentSucceeded struct {
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	ChargeID string    `json:"charge_id"`
	At       time.Time `json:"at"`
}

// PaymentDeclined says the gateway refused the charge; Reason says why.
type PaymentDeclined struct {
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// PaymentRefundRequested says the payment service will refund a charge.
type PaymentRefundRequested struct {
	OrderID string    `json:"order_id"`
	Amount  int64     `json:"amount"`
	At      time.Time `json:"at"`
}

// PaymentRefunded says the charge was refunded.
type PaymentRefunded struct {
	OrderID  string    `json:"order_id"`
	Amount   int64     `json:"amount"`
	RefundID string    `json:"refund_id"`
	At       time.Time `json:"at"`
}
