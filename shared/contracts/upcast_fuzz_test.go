package contracts

import (
	"encoding/json"
	"math/big"
	"testing"
)

// FuzzUpcast feeds arbitrary payloads and versions to Upcast, the first code
// that touches every stored or received event: it must never panic, and an
// OrderPlaced it upcasts must carry the exact total of its items, never one
// that wrapped around.
func FuzzUpcast(f *testing.F) {
	f.Add(OrderPlacedType, 1, []byte(`{"order_id":"o-1","customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":150}]}`))
	f.Add(OrderPlacedType, 2, []byte(`{"order_id":"o-1","total":300}`))
	f.Add(OrderPaidType, 1, []byte(`{}`))
	f.Fuzz(func(t *testing.T, eventType string, version int, payload []byte) {
		out, got, err := Upcast(eventType, version, payload)
		if err != nil || eventType != OrderPlacedType || version != 1 {
			return
		}
		if got != 2 {
			t.Fatalf("upcast v1 gave version %d", got)
		}
		var v1 OrderPlacedV1
		var v2 struct {
			Total int64 `json:"total"`
		}
		if json.Unmarshal(payload, &v1) != nil || json.Unmarshal(out, &v2) != nil {
			t.Fatalf("upcast accepted %q and gave %q", payload, out)
		}
		want := new(big.Int)
		for _, it := range v1.Items {
			want.Add(want, new(big.Int).Mul(big.NewInt(it.Quantity), big.NewInt(it.UnitPrice)))
		}
		if want.Cmp(big.NewInt(v2.Total)) != 0 {
			t.Fatalf("upcast total %d, the items sum to %s", v2.Total, want)
		}
	})
}
