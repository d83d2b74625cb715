package payment_test

import (
	"errors"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/domain/payment"
)

func TestPaymentLifecycle(t *testing.T) {
	now := time.Now()
	p, err := payment.Requested(payment.Request{OrderID: "o-1", Amount: 2800, Currency: "EUR"}, now)
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

func TestInvalidRequestsAreRefused(t *testing.T) {
	for _, req := range []payment.Request{
		{OrderID: "", Amount: 1, Currency: "EUR"},
		{OrderID: "o", Amount: 0, Currency: "EUR"},
		{OrderID: "o", Amount: -3, Currency: "EUR"},
		{OrderID: "o", Amount: 1, Currency: "EURO"},
	} {
		if _, err := payment.Requested(req, time.Now()); !errors.Is(err, payment.ErrInvalidRequest) {
			t.Errorf("Requested(%+v) = %v, want ErrInvalidRequest", req, err)
		}
	}
}
