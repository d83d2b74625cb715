package chaos

import "testing"

// The checker restates the order's lifecycle; an order the order service
// timed out is failed, and refunded if its payment lands after all.
func TestTimedOutOrdersEndPaymentFailedOrRefunded(t *testing.T) {
	placed := storedEvent{eventType: orderPlaced}
	timedOut := storedEvent{eventType: orderPaymentTimedOut}
	cases := []struct {
		name           string
		order, payment []storedEvent
		want           string
	}{
		{"no outcome yet", []storedEvent{placed}, nil, ""},
		{"timed out, no payment", []storedEvent{placed, timedOut}, nil, "payment_failed"},
		{"timed out, declined later", []storedEvent{placed, timedOut}, []storedEvent{{eventType: paymentDeclined}}, "payment_failed"},
		{"timed out, paid later", []storedEvent{placed, timedOut, {eventType: orderRefundRequested}},
			[]storedEvent{{eventType: paymentSucceeded}}, "refunded"},
	}
	for _, c := range cases {
		if got := expectedStatus(c.order, c.payment); got != c.want {
			t.Errorf("%s: expected status %q, want %q", c.name, got, c.want)
		}
	}
	if got := folded([]storedEvent{placed, timedOut}); got != "payment_failed" {
		t.Errorf("an order whose last event is %s folds to %q, want payment_failed", orderPaymentTimedOut, got)
	}
}
