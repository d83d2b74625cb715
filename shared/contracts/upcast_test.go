package contracts_test

import (
	"encoding/json"
	"testing"

	"github.com/es-outbox/reference/shared/contracts"
)

func TestOrderPlacedV1IsReadAsTheCurrentShape(t *testing.T) {
	v1 := []byte(`{"order_id":"o-1","customer_id":"c-1","currency":"EUR","placed_at":"2026-01-02T03:04:05Z",
		"items":[{"sku":"a","quantity":2,"unit_price":1250},{"sku":"b","quantity":1,"unit_price":300}]}`)
	payload, version, err := contracts.Upcast(contracts.OrderPlacedType, 1, v1)
	if err != nil {
		t.Fatal(err)
	}
	if version != contracts.OrderPlacedVersion {
		t.Fatalf("upcast to v%d, want the current v%d", version, contracts.OrderPlacedVersion)
	}
	var placed contracts.OrderPlaced
	if err := json.Unmarshal(payload, &placed); err != nil {
		t.Fatal(err)
	}
	if placed.Total != 2800 || placed.OrderID != "o-1" || len(placed.Items) != 2 || placed.PlacedAt.Year() != 2026 {
		t.Errorf("upcast v1 = %+v, want total 2800 and the original fields", placed)
	}
}

func TestCurrentAndUnknownVersionsPassThrough(t *testing.T) {
	for _, version := range []int{contracts.OrderPlacedVersion, 99} {
		payload, got, err := contracts.Upcast(contracts.OrderPlacedType, version, []byte(`{"x":1}`))
		if err != nil || got != version || string(payload) != `{"x":1}` {
			t.Errorf("Upcast(v%d) = %s v%d %v; want it unchanged", version, payload, got, err)
		}
	}
	if _, _, err := contracts.Upcast(contracts.OrderPlacedType, 1, []byte(`{"items": 5}`)); err == nil {
		t.Error("an undecodable v1 payload upcast without error")
	}
}

// A v1 OrderPlaced whose items' total overflows int64 used to be read with
// a wrapped-around total (0 for 2^32 × 2^32): a free order. It is an error.
func TestOrderPlacedV1WithAnOverflowingTotalIsRejected(t *testing.T) {
	v1 := []byte(`{"order_id":"o-1","items":[{"sku":"a","quantity":4294967296,"unit_price":4294967296}]}`)
	if payload, _, err := contracts.Upcast(contracts.OrderPlacedType, 1, v1); err == nil {
		t.Errorf("upcast = %s, want an error", payload)
	}
}
