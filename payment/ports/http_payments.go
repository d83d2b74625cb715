package ports

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/httpserver"
)

type paymentJSON struct {
	OrderID       string         `json:"order_id"`
	Status        string         `json:"status"`
	Amount        int64          `json:"amount"`
	Currency      string         `json:"currency"`
	ChargeID      string         `json:"charge_id,omitempty"`
	DeclineReason string         `json:"decline_reason,omitempty"`
	RefundID      string         `json:"refund_id,omitempty"`
	History       []historyEntry `json:"history"`
}

type historyEntry struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
}

// getPayment shows an order's payment: its state and its history.
func (s HTTPServer) getPayment(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("order_id")
	if _, err := uuid.Parse(orderID); err != nil {
		httpserver.WriteError(w, r, httpserver.BadField("order_id", "is not a UUID"))
		return
	}
	p, err := s.payments.Payment(r.Context(), orderID)
	if errors.Is(err, payment.ErrNotFound) {
		httpserver.WriteError(w, r, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no payment for this order"})
		return
	}
	if err != nil {
		httpserver.WriteError(w, r, err)
		return
	}
	resp := paymentJSON{
		OrderID: p.OrderID(), Status: string(p.Status()), Amount: p.Amount(), Currency: p.Currency(),
		ChargeID: p.ChargeID(), DeclineReason: p.DeclineReason(), RefundID: p.RefundID(),
	}
	for _, e := range p.History() {
		resp.History = append(resp.History, historyEntry{Type: e.EventType(), At: eventTime(e)})
	}
	httpserver.WriteJSON(w, http.StatusOK, resp)
}

func eventTime(e payment.Event) time.Time {
	switch e := e.(type) {
	case payment.PaymentRequested:
		return e.At
	case payment.PaymentSucceeded:
		return e.At
	case payment.PaymentDeclined:
		return e.At
	case payment.PaymentRefundRequested:
		return e.At
	case payment.PaymentRefunded:
		return e.At
	}
	return time.Time{}
}
