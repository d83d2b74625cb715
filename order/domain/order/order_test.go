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
