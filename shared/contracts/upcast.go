package contracts

import (
	"encoding/json"
	"fmt"
	"math/big"
)

// Events are stored forever, but their shapes evolve. A reader never deals
// with old shapes itself: it passes every stored or received payload through
// Upcast, which applies one small step per version until the payload has the
// current shape, and then decodes that.
//
// The example: OrderPlaced v1 carried the line items but no total; v2 added
// the total, which consumers such as the payment service rely on. Stored v1
// events are read as v2 with the total computed from their items.

// upcaster turns a payload of version From into version From+1.
type upcaster struct {
	From int
	Up   func(payload []byte) ([]byte, error)
}

var upcasters = map[string][]upcaster{
	OrderPlacedType: {{From: 1, Up: orderPlacedV1ToV2}},
}

// Upcast returns the payload of an event of the given type and schema
// version in that type's current shape, with the version it now has.
func Upcast(eventType string, version int, payload []byte) ([]byte, int, error) {
	for _, u := range upcasters[eventType] {
		if u.From != version {
			continue
		}
		up, err := u.Up(payload)
		if err != nil {
			return nil, version, fmt.Errorf("upcast %s v%d to v%d: %w", eventType, version, version+1, err)
		}
		payload, version = up, version+1
	}
	return payload, version, nil
}

// OrderPlacedV1 is the first shape of OrderPlaced, before the total.
type OrderPlacedV1 struct {
	OrderID    string     `json:"order_id"`
	CustomerID string     `json:"customer_id"`
	Items      []LineItem `json:"items"`
	Currency   string     `json:"currency"`
	PlacedAt   string     `json:"placed_at"`
}

func orderPlacedV1ToV2(payload []byte) ([]byte, error) {
	var v1 OrderPlacedV1
	if err := json.Unmarshal(payload, &v1); err != nil {
		return nil, err
	}
	// The total is computed in arbitrary precision: a product or sum that
	// wrapped around int64 would turn an absurd order into a cheap or free
	// one (found by FuzzUpcast). Such a payload is an error, for a person.
	sum := new(big.Int)
	for _, it := range v1.Items {
		sum.Add(sum, new(big.Int).Mul(big.NewInt(it.Quantity), big.NewInt(it.UnitPrice)))
	}
	if !sum.IsInt64() {
		return nil, fmt.Errorf("the total of its items, %s, does not fit in 64 bits", sum)
	}
	total := sum.Int64()
	return json.Marshal(struct {
		OrderPlacedV1
		Total int64 `json:"total"`
	}{v1, total})
}
