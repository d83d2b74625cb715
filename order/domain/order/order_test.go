package order_test

import (
	"errors"
	"testing"
	"time"

	"github.com/es-outbox/reference/order/domain/order"
)

func validCommand() order.PlaceOrder {
	return order.PlaceOrder{
		OrderID: "o-1", CustomerID: "c-1", Currency: "EUR",
		Items: []order.LineItem{{SKU: "a", Quantity: 2, UnitPrice: 1250}, {SKU: "b", Quantity: 1, UnitPrice: 300}},
	}
}

func TestPlaceRecordsOrderPlacedWithTheTotal(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	o, err := order.Place(validCommand(), now)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusPlaced || o.Total() != 2800 || o.Version() != 1 || o.OriginalVersion() != 0 {
		t.Errorf("placed order: status %s total %d version %d/%d", o.Status(), o.Total(), o.Version(), o.OriginalVersion())
	}
	changes := o.Changes()
	if len(changes) != 1 {
		t.Fatalf("%d changes, want one OrderPlaced", len(changes))
	}
	placed, ok := changes[0].(order.OrderPlaced)
	if !ok || placed.Total != 2800 || !placed.PlacedAt.Equal(now) || len(placed.Items) != 2 {
		t.Errorf("event %+v", changes[0])
	}

	// Folding the events gives the same order, with nothing left to store.
	again, err := order.FromEvents(changes)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != "o-1" || again.Total() != 2800 || len(again.Changes()) != 0 || again.OriginalVersion() != 1 {
		t.Errorf("rebuilt order %+v", again)
	}
}

// A stored order takes the next command without being loaded again: its
// next changes follow the stored ones.
func TestCommittedOrderRecordsOnlyWhatFollows(t *testing.T) {
	now := time.Now()
	o, err := order.Place(validCommand(), now)
	if err != nil {
		t.Fatal(err)
	}
	o.MarkCommitted()
	if len(o.Changes()) != 0 || o.OriginalVersion() != 1 || o.Version() != 1 {
		t.Fatalf("after the commit: %d changes after version %d, at %d; want none after 1, at 1", len(o.Changes()), o.OriginalVersion(), o.Version())
	}
	if err := o.Cancel("", now); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Changes()[0].(order.OrderCancelled); len(o.Changes()) != 1 || !ok || o.OriginalVersion() != 1 {
		t.Errorf("changes %v after version %d, want the cancel alone, after 1", o.Changes(), o.OriginalVersion())
	}
}

func TestPlaceRejectsInvalidCommandsNamingTheField(t *testing.T) {
	cases := map[string]struct {
		change func(*order.PlaceOrder)
		field  string
	}{
		"no customer":       {func(c *order.PlaceOrder) { c.CustomerID = "" }, "customer_id"},
		"no items":          {func(c *order.PlaceOrder) { c.Items = nil }, "items"},
		"too many items":    {func(c *order.PlaceOrder) { c.Items = make([]order.LineItem, order.MaxLineItems+1) }, "items"},
		"lowercase code":    {func(c *order.PlaceOrder) { c.Currency = "eur" }, "currency"},
		"empty sku":         {func(c *order.PlaceOrder) { c.Items[1].SKU = "" }, "items[1].sku"},
		"zero quantity":     {func(c *order.PlaceOrder) { c.Items[0].Quantity = 0 }, "items[0].quantity"},
		"huge quantity":     {func(c *order.PlaceOrder) { c.Items[0].Quantity = order.MaxQuantity + 1 }, "items[0].quantity"},
		"negative price":    {func(c *order.PlaceOrder) { c.Items[0].UnitPrice = -1 }, "items[0].unit_price"},
		"overflowing price": {func(c *order.PlaceOrder) { c.Items[0].UnitPrice = 1 << 62 }, "items[0].unit_price"},
		"nothing to charge": {func(c *order.PlaceOrder) { c.Items[0].UnitPrice, c.Items[1].UnitPrice = 0, 0 }, "items"},
		"NUL in sku":        {func(c *order.PlaceOrder) { c.Items[1].SKU = "a\x00" }, "items[1].sku"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := validCommand()
			c.change(&cmd)
			_, err := order.Place(cmd, time.Now())
			var invalid *order.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != c.field {
				t.Errorf("err = %v, want a validation error on %s", err, c.field)
			}
		})
	}
}

func placed(t *testing.T) *order.Order {
	t.Helper()
	o, err := order.Place(validCommand(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o, err = order.FromEvents(o.Changes())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestLifecycle(t *testing.T) {
	now := time.Now()
	type step struct {
		name    string
		command func(*order.Order) error
		status  order.Status
		events  int // new events the command records
		refused bool
	}
	cancel := func(o *order.Order) error { return o.Cancel("no longer needed", now) }
	pay := func(o *order.Order) error { return o.RecordPaymentSucceeded("ch-1", 2800, now) }
	decline := func(o *order.Order) error { return o.RecordPaymentDeclined("insufficient funds", now) }
	refund := func(o *order.Order) error { return o.RecordRefund("rf-1", 2800, now) }
	early := func(o *order.Order) error { o.TimeOutPayment(time.Hour, o.PlacedAt().Add(59*time.Minute)); return nil }
	late := func(o *order.Order) error { o.TimeOutPayment(time.Hour, o.PlacedAt().Add(time.Hour)); return nil }
	paths := map[string][]step{
		"timed out, then the payment arrives": {
			{"deadline not reached", early, order.StatusPlaced, 0, false},
			{"deadline reached", late, order.StatusPaymentFailed, 1, false},
			{"deadline again (another replica)", late, order.StatusPaymentFailed, 0, false},
			{"cancel", cancel, order.StatusPaymentFailed, 0, true},
			{"pay", pay, order.StatusRefundRequested, 2, false},
			{"pay again (redelivery)", pay, order.StatusRefundRequested, 0, false},
			{"refund", refund, order.StatusRefunded, 1, false},
		},
		"timed out, then the decline arrives": {
			{"deadline reached", late, order.StatusPaymentFailed, 1, false},
			{"decline", decline, order.StatusPaymentFailed, 0, false},
		},
		"paid before the deadline": {
			{"pay", pay, order.StatusPaid, 1, false},
			{"deadline reached", late, order.StatusPaid, 0, false},
		},
		"paid then refunded on cancel": {
			{"pay", pay, order.StatusPaid, 1, false},
			{"pay again (redelivery)", pay, order.StatusPaid, 0, false},
			{"cancel", cancel, order.StatusRefundRequested, 1, false},
			{"cancel again", cancel, order.StatusRefundRequested, 0, true},
			{"refund", refund, order.StatusRefunded, 1, false},
			{"refund again (redelivery)", refund, order.StatusRefunded, 0, false},
		},
		"declined": {
			{"decline", decline, order.StatusPaymentFailed, 1, false},
			{"decline again (redelivery)", decline, order.StatusPaymentFailed, 0, false},
			{"cancel", cancel, order.StatusPaymentFailed, 0, true},
			{"pay", pay, order.StatusPaymentFailed, 0, true},
		},
		"cancelled before payment": {
			{"refund nobody asked for", refund, order.StatusPlaced, 0, true},
			{"cancel", cancel, order.StatusCancelled, 1, false},
			{"decline arrives", decline, order.StatusCancelled, 0, false},
		},
		"cancelled, then the payment arrives": {
			{"cancel", cancel, order.StatusCancelled, 1, false},
			{"pay", pay, order.StatusRefundRequested, 2, false},
			{"refund", refund, order.StatusRefunded, 1, false},
		},
	}
	for name, steps := range paths {
		t.Run(name, func(t *testing.T) {
			o := placed(t)
			for _, s := range steps {
				before := len(o.Changes())
				err := s.command(o)
				var transition *order.TransitionError
				if s.refused != errors.As(err, &transition) {
					t.Fatalf("%s: err = %v, refused = %v", s.name, err, s.refused)
				}
				if o.Status() != s.status || len(o.Changes())-before != s.events {
					t.Fatalf("%s: status %s with %d new events, want %s with %d", s.name, o.Status(), len(o.Changes())-before, s.status, s.events)
				}
			}
			// What the commands recorded folds back into the same state.
			all := append(placedEvents(t), o.Changes()...)
			again, err := order.FromEvents(all)
			if err != nil || again.Status() != o.Status() || again.Version() != o.Version() {
				t.Errorf("folded back: %v %v", again, err)
			}
		})
	}
}

func placedEvents(t *testing.T) []order.Event {
	o, _ := order.Place(validCommand(), time.Now())
	return o.Changes()
}
