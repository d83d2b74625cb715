package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// order returns the order as GET /v1/orders/{id} shows it.
func (s *system) getOrder(t testing.TB, id string) (status, reason string) {
	t.Helper()
	var o struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	testenv.DoJSON(t, http.MethodGet, s.orderURL+"/v1/orders/"+id, "", "", &o)
	return o.Status, o.Reason
}

// An order the payment service refuses on its merits (here a currency it
// does not take) ends payment_failed with the refusal as its reason,
// instead of waiting in the poison queue for ever.
func TestRefusedOrderEndsPaymentFailedWithTheReason(t *testing.T) {
	s := start(t, "PAYMENT_CURRENCIES=EUR")
	resp, err := http.Post(s.orderURL+"/v1/orders", "application/json", strings.NewReader(
		`{"customer_id":"c-8","currency":"USD","items":[{"sku":"book","quantity":1,"unit_price":1500}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		OrderID string `json:"order_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/orders in USD = %d, want 201", resp.StatusCode)
	}
	s.waitForStatus(t, created.OrderID, "payment_failed")
	if _, reason := s.getOrder(t, created.OrderID); !strings.Contains(reason, "currency USD is not supported") {
		t.Errorf("order failed with reason %q, want the payment service's refusal", reason)
	}
	if n := s.count(t, `SELECT count(*) FROM poison_messages`); n != 0 {
		t.Errorf("%d poisoned messages, want 0", n)
	}
}
