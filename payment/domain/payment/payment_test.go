package payment_test

import (
	"errors"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/domain/payment"
)

func TestPaymentLifecycle(t *testing.T) {
	now := time.Now()
	p, err := payment.Requested(payment.Request{OrderID: "o-1", Amount: 2800, Currency: "EUR"}, payment.Policy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RequestRefund(now); !errors.Is(err, payment.ErrCannotRefund) {
		t.Errorf("refund before a charge: %v, want ErrCannotRefund", err)
	}
	p.RecordCharge(payment.Charge{ID: "ch-1", Approved: true}, now)
	p.RecordCharge(payment.Charge{ID: "ch-2", Approved: false}, now) // a late answer changes nothing
	if p.Status() != payment.StatusSucceeded || p.ChargeID() != "ch-1" {
		t.Fatalf("status %s charge %s, want succeeded with ch-1", p.Status(), p.ChargeID())
	}
	for range 2 {
		if err := p.RequestRefund(now); err != nil {
			t.Fatal(err)
		}
		p.RecordRefund(payment.Refund{ID: "rf-1"}, now)
	}
	if p.Status() != payment.StatusRefunded || len(p.Changes()) != 4 {
		t.Errorf("status %s after %d events, want refunded after requested, succeeded, refund requested, refunded", p.Status(), len(p.Changes()))
	}
	again, err := payment.FromEvents(p.Changes())
	if err != nil || again.Status() != payment.StatusRefunded || again.RefundID() != "rf-1" || len(again.History()) != 4 {
		t.Errorf("folded back: %+v %v", again, err)
	}
}

func TestARequestWithoutOrderIsInvalid(t *testing.T) {
	if _, err := payment.Requested(payment.Request{Amount: 1, Currency: "EUR"}, payment.Policy{}, time.Now()); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("Requested without an order id = %v, want ErrInvalidRequest", err)
	}
}

// A request the service refuses on its merits is a payment declined at once
// with the reason, never an error for the poison queue.
func TestRefusedRequestsAreDeclinedWithAReason(t *testing.T) {
	policy := payment.Policy{Currencies: []string{"EUR", "USD"}}
	for req, reason := range map[payment.Request]string{
		{OrderID: "o", Amount: 0, Currency: "EUR"}:     "amount 0 is not positive: there is nothing to charge",
		{OrderID: "o", Amount: -3, Currency: "EUR"}:    "amount -3 is not positive: there is nothing to charge",
		{OrderID: "o", Amount: 1, Currency: "EURO"}:    `currency "EURO" is not an ISO 4217 code`,
		{OrderID: "o", Amount: 1, Currency: "SEK"}:     "currency SEK is not supported (supported: EUR, USD)",
		{OrderID: "o", Amount: 1, Currency: "usd"}:     `currency "usd" is not an ISO 4217 code`,
		{OrderID: "o", Amount: 1_000, Currency: "USD"}: "",
	} {
		p, err := payment.Requested(req, policy, time.Now())
		if err != nil {
			t.Fatalf("Requested(%+v) = %v", req, err)
		}
		wantStatus := payment.StatusDeclined
		if reason == "" {
			wantStatus = payment.StatusRequested
		}
		if p.Status() != wantStatus || p.DeclineReason() != reason {
			t.Errorf("Requested(%+v): %s %q, want %s %q", req, p.Status(), p.DeclineReason(), wantStatus, reason)
		}
	}
}

// A stored payment takes the next command without being loaded again: its
// next changes follow the stored ones, and a request again changes nothing.
func TestCommittedPaymentRecordsOnlyWhatFollows(t *testing.T) {
	now := time.Now()
	req := payment.Request{OrderID: "o-1", Amount: 2800, Currency: "EUR"}
	p := payment.New("o-1")
	if err := p.Request(req, payment.Policy{}, now); err != nil {
		t.Fatal(err)
	}
	p.MarkCommitted()
	if err := p.Request(req, payment.Policy{}, now); err != nil || len(p.Changes()) != 0 || p.OriginalVersion() != 1 {
		t.Fatalf("after the commit: %d changes after version %d (%v), want none after 1", len(p.Changes()), p.OriginalVersion(), err)
	}
	p.RecordCharge(payment.Charge{ID: "ch-1", Approved: true}, now)
	if len(p.Changes()) != 1 || p.OriginalVersion() != 1 || p.Version() != 2 {
		t.Errorf("%d changes after version %d, at %d; want the charge alone, after 1, at 2", len(p.Changes()), p.OriginalVersion(), p.Version())
	}
}
