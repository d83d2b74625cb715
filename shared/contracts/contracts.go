// Package contracts holds the events that cross service boundaries. Since the
// event store is the outbox, a stored event is exactly what its consumers
// receive: these structs are both the order's stored events and the payment
// service's input, so the two services agree by construction and never import
// each other.
package contracts

import "time"

// Event type names and the schema version of their current shape. A type
// name never changes; a breaking change to a payload gets a new version.
const (
	OrderPlacedType    = "order.OrderPlaced"
	OrderPlacedVersion = 1

	PaymentSucceededType    = "payment.PaymentSucceeded"
	PaymentSucceededVersion = 1
	PaymentDeclinedType     = "payment.PaymentDeclined"
	PaymentDeclinedVersion  = 1
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
