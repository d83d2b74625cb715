package contracts

// PaymentKey is the key of an order's payment events on payment.events: the
// payment's stream id.
func PaymentKey(orderID string) string { return "payment-" + orderID }
