package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/contracts"
)

// The payment use cases on an in-memory repository and gateway: no
// PostgreSQL, no Kafka; the whole file runs in milliseconds.

// payments is an in-memory payment.Repository: each order's stream of
// events, appended only at the version it was loaded at, as the event store
// does.
type payments struct {
	mu      sync.Mutex
	streams map[string][]payment.Event
	// beforeAppend, if set, runs once before the next append: another
	// delivery of the same order storing first.
	beforeAppend func()
}

func newPayments() *payments { return &payments{streams: map[string][]payment.Event{}} }

func (r *payments) Get(_ context.Context, orderID string) (*payment.Payment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	events, ok := r.streams[orderID]
	if !ok {
		return nil, fmt.Errorf("%w: order %s", payment.ErrNotFound, orderID)
	}
	return payment.FromEvents(events)
}

func (r *payments) Update(_ context.Context, orderID string, update func(*payment.Payment) error) (*payment.Payment, error) {
	r.mu.Lock()
	stored := r.streams[orderID]
	r.mu.Unlock()
	p := payment.New(orderID)
	if len(stored) > 0 {
		var err error
		if p, err = payment.FromEvents(stored); err != nil {
			return nil, err
		}
	}
	if err := update(p); err != nil {
		return nil, err
	}
	if hook := r.beforeAppend; hook != nil {
		r.beforeAppend = nil
		hook()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if int64(len(r.streams[orderID])) != p.OriginalVersion() {
		return nil, fmt.Errorf("%w: order %s", payment.ErrConcurrentUpdate, orderID)
	}
	if len(p.Changes()) > 0 {
		r.streams[orderID] = append(r.streams[orderID], p.Changes()...)
		p.MarkCommitted()
	}
	return p, nil
}

func (r *payments) CountOutcomes(context.Context) (map[payment.Status]int64, error) {
	return nil, errors.New("not needed here")
}

// types are the event types of the order's stream, oldest first.
func (r *payments) types(orderID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var types []string
	for _, e := range r.streams[orderID] {
		types = append(types, e.EventType())
	}
	return types
}

// gateway is an in-memory gateway, idempotent by order id like the real
// ones: it counts what it was asked and what it did.
type gateway struct {
	approveUpTo        int64
	failNext           int // calls that fail with ErrTransient first
	calls, refundCalls int
	chargedMoney       int // approved charges made
	charges            map[string]payment.Charge
	refunds            map[string]payment.Refund
}

func newGateway() *gateway {
	return &gateway{approveUpTo: 10_000, charges: map[string]payment.Charge{}, refunds: map[string]payment.Refund{}}
}

func (g *gateway) Charge(_ context.Context, req payment.Request) (payment.Charge, error) {
	g.calls++
	if g.failNext > 0 {
		g.failNext--
		return payment.Charge{}, payment.ErrTransient
	}
	if c, ok := g.charges[req.OrderID]; ok {
		return c, nil
	}
	c := payment.Charge{ID: fmt.Sprintf("ch-%d", len(g.charges)+1), Approved: req.Amount <= g.approveUpTo}
	if c.Approved {
		g.chargedMoney++
	} else {
		c.DeclineReason = "over the limit"
	}
	g.charges[req.OrderID] = c
	return c, nil
}

func (g *gateway) Refund(_ context.Context, orderID, _ string, _ int64) (payment.Refund, error) {
	g.refundCalls++
	if r, ok := g.refunds[orderID]; ok {
		return r, nil
	}
	r := payment.Refund{ID: fmt.Sprintf("re-%d", len(g.refunds)+1)}
	g.refunds[orderID] = r
	return r, nil
}

func setup(policy payment.Policy) (*app.Application, *payments, *gateway) {
	repo, gw := newPayments(), newGateway()
	return app.New(repo, gw, policy, slog.New(slog.NewTextHandler(io.Discard, nil))), repo, gw
}

func want(t *testing.T, repo *payments, orderID string, types ...string) {
	t.Helper()
	if got := repo.types(orderID); !reflect.DeepEqual(got, types) {
		t.Errorf("payment stream of %s is %v, want %v", orderID, got, types)
	}
}

const (
	requested       = contracts.PaymentRequestedType
	succeeded       = contracts.PaymentSucceededType
	declined        = contracts.PaymentDeclinedType
	refundRequested = contracts.PaymentRefundRequestedType
	refunded        = contracts.PaymentRefundedType
)

var req = payment.Request{OrderID: "o-1", Amount: 2_800, Currency: "EUR"}

// charge delivers r's OrderPlaced, as the consumer of order.events does.
func charge(t *testing.T, a *app.Application, r payment.Request) {
	t.Helper()
	if err := a.ChargeOrder(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// chargeFails delivers r's OrderPlaced and expects it to fail with want,
// for the consumer to retry.
func chargeFails(t *testing.T, a *app.Application, r payment.Request, want error) {
	t.Helper()
	if err := a.ChargeOrder(context.Background(), r); !errors.Is(err, want) {
		t.Fatalf("ChargeOrder(%s) = %v, want %v", r.OrderID, err, want)
	}
}

// chargedOnce checks that the gateway took the money of order o-1 once and
// its payment stream says so.
func chargedOnce(t *testing.T, repo *payments, g *gateway) {
	t.Helper()
	want(t, repo, "o-1", requested, succeeded)
	if g.chargedMoney != 1 {
		t.Errorf("charged %d times, want 1", g.chargedMoney)
	}
}

func TestRedeliveredOrderPlacedChargesOnce(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	ctx := context.Background()
	for range 3 {
		charge(t, a, req)
	}
	if gw.calls != 1 || gw.chargedMoney != 1 {
		t.Errorf("gateway asked %d times, charged %d times; want once each", gw.calls, gw.chargedMoney)
	}
	want(t, repo, "o-1", requested, succeeded)
	if p, _ := a.Payment(ctx, "o-1"); p.Status() != payment.StatusSucceeded || p.ChargeID() != "ch-1" {
		t.Errorf("payment %s with charge %q, want succeeded with ch-1", p.Status(), p.ChargeID())
	}
}

func TestPolicyRefusalIsDeclinedWithoutAskingTheGateway(t *testing.T) {
	a, repo, gw := setup(payment.Policy{Currencies: []string{"EUR"}})
	charge(t, a, payment.Request{OrderID: "o-1", Amount: 100, Currency: "USD"})
	if gw.calls != 0 {
		t.Errorf("gateway asked %d times for a refused currency, want 0", gw.calls)
	}
	want(t, repo, "o-1", requested, declined)
}

func TestGatewayDeclineIsRecordedWithItsReason(t *testing.T) {
	a, repo, _ := setup(payment.Policy{})
	charge(t, a, payment.Request{OrderID: "o-1", Amount: 1_000_000, Currency: "EUR"})
	want(t, repo, "o-1", requested, declined)
	if p, _ := a.Payment(context.Background(), "o-1"); p.DeclineReason() != "over the limit" {
		t.Errorf("decline reason %q, want the gateway's", p.DeclineReason())
	}
}

func TestTransientGatewayFailureStoresNothingAndTheRetryChargesOnce(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	gw.failNext = 1
	chargeFails(t, a, req, payment.ErrTransient)
	want(t, repo, "o-1")
	charge(t, a, req)
	chargedOnce(t, repo, gw)
}

// The process died after asking the gateway, having stored the request
// only (as the previous release did): the redelivery asks again, and the
// gateway answers with the first charge.
func TestOnlyRequestedPaymentIsChargedWithTheFirstCharge(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	ctx := context.Background()
	if _, err := repo.Update(ctx, "o-1", func(p *payment.Payment) error { return p.Request(req, payment.Policy{}, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	first, _ := gw.Charge(ctx, req)
	charge(t, a, req)
	want(t, repo, "o-1", requested, succeeded)
	if p, _ := a.Payment(ctx, "o-1"); p.ChargeID() != first.ID || gw.chargedMoney != 1 {
		t.Errorf("recorded charge %q after %d charges, want the first one (%s), once", p.ChargeID(), gw.chargedMoney, first.ID)
	}
}

// Two deliveries of the same OrderPlaced at once (a rebalance): the one
// that stores second gets ErrConcurrentUpdate, and its retry finds the
// payment decided.
func TestConcurrentDeliveryIsRetriedAndChargesOnce(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	repo.beforeAppend = func() { charge(t, a, req) }
	chargeFails(t, a, req, payment.ErrConcurrentUpdate) // the second delivery to store
	charge(t, a, req)
	chargedOnce(t, repo, gw)
}

func TestRedeliveredRefundRefundsOnce(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	ctx := context.Background()
	charge(t, a, req)
	for range 2 {
		if err := a.RefundOrder(ctx, "o-1"); err != nil {
			t.Fatal(err)
		}
	}
	want(t, repo, "o-1", requested, succeeded, refundRequested, refunded)
	if gw.refundCalls != 1 {
		t.Errorf("gateway asked to refund %d times, want 1", gw.refundCalls)
	}
}

func TestRefundOfAPaymentThatTookNoMoneyIsRefused(t *testing.T) {
	a, repo, gw := setup(payment.Policy{})
	ctx := context.Background()
	charge(t, a, payment.Request{OrderID: "o-1", Amount: 1_000_000, Currency: "EUR"})
	if err := a.RefundOrder(ctx, "o-1"); !errors.Is(err, payment.ErrCannotRefund) {
		t.Errorf("refund of a declined payment = %v, want ErrCannotRefund", err)
	}
	if err := a.RefundOrder(ctx, "o-2"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("refund of an order never charged = %v, want ErrNotFound", err)
	}
	want(t, repo, "o-1", requested, declined)
	want(t, repo, "o-2")
	if gw.refundCalls != 0 {
		t.Errorf("gateway asked to refund %d times, want 0", gw.refundCalls)
	}
}
