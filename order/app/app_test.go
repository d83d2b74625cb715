package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
)

// The order use cases on an in-memory store: no PostgreSQL, no Kafka; the
// whole file runs in milliseconds.

// orders is an in-memory app.OrderStore: each order's stream of events,
// appended only at the version it was loaded at, as the event store does,
// and the idempotency keys.
type orders struct {
	mu      sync.Mutex
	streams map[string][]order.Event
	keys    map[string][2]string // key: first order id, request hash
	// beforeAppend, if set, runs once before the next append of an
	// update: another command on the same order storing first.
	beforeAppend func()
}

func newOrders() *orders {
	return &orders{streams: map[string][]order.Event{}, keys: map[string][2]string{}}
}

func (s *orders) Add(_ context.Context, o *order.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.append(o)
}

// append stores o's changes if its stream is where o was loaded from.
func (s *orders) append(o *order.Order) error {
	if int64(len(s.streams[o.ID()])) != o.OriginalVersion() {
		return fmt.Errorf("%w: %s", order.ErrConcurrentUpdate, o.ID())
	}
	s.streams[o.ID()] = append(s.streams[o.ID()], o.Changes()...)
	o.MarkCommitted()
	return nil
}

func (s *orders) AddIdempotent(_ context.Context, o *order.Order, key, requestHash string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.keys[key]; ok {
		return first[0], first[1], nil
	}
	s.keys[key] = [2]string{o.ID(), requestHash}
	return "", "", s.append(o)
}

func (s *orders) Get(_ context.Context, id string) (*order.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, ok := s.streams[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", order.ErrNotFound, id)
	}
	return order.FromEvents(events)
}

func (s *orders) Update(ctx context.Context, id string, expectedVersion int64, update func(*order.Order) error) (*order.Order, error) {
	o, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if expectedVersion != order.AnyVersion && expectedVersion != o.Version() {
		return nil, fmt.Errorf("%w: %s", order.ErrVersionMismatch, id)
	}
	if err := update(o); err != nil {
		return nil, err
	}
	if hook := s.beforeAppend; hook != nil {
		s.beforeAppend = nil
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return o, s.append(o)
}

func (s *orders) Events(_ context.Context, id string) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recorded []eventstore.RecordedEvent
	for i, e := range s.streams[id] {
		payload, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		recorded = append(recorded, eventstore.RecordedEvent{StreamID: id, StreamVersion: int64(i + 1),
			Event: eventstore.Event{Type: e.EventType(), SchemaVersion: e.SchemaVersion(), Payload: payload}})
	}
	return recorded, nil
}

// types are the event types of the order's stream, oldest first.
func (s *orders) types(t *testing.T, id string) []string {
	t.Helper()
	events, err := s.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	return types
}

func (s *orders) want(t *testing.T, id string, types ...string) {
	t.Helper()
	if got := s.types(t, id); !reflect.DeepEqual(got, types) {
		t.Errorf("stream of order %s is %v, want %v", id, got, types)
	}
}

// placing is the order waiting for its deadlines: the orders of the store
// still placed, as the order_summaries read model lists them.
type placing struct{ *orders }

func (d placing) AwaitingPaymentSince(ctx context.Context, t time.Time, _ *app.OrderCursor, _ int) ([]app.OrderCursor, error) {
	var due []app.OrderCursor
	for id := range d.streams {
		if o, err := d.Get(ctx, id); err == nil && o.Status() == order.StatusPlaced && o.PlacedAt().Before(t) {
			due = append(due, app.OrderCursor{PlacedAt: o.PlacedAt(), OrderID: id})
		}
	}
	return due, nil
}

func (placing) CountOverdue(context.Context, time.Time, time.Time) (map[order.Status]int64, error) {
	return nil, errors.New("not needed here")
}

const (
	placed          = contracts.OrderPlacedType
	paid            = contracts.OrderPaidType
	cancelled       = contracts.OrderCancelledType
	refundRequested = contracts.OrderRefundRequestedType
	refunded        = contracts.OrderRefundedType
	timedOut        = contracts.OrderPaymentTimedOutType
)

var book = order.PlaceOrder{CustomerID: "alice", Currency: "EUR", Items: []order.LineItem{{SKU: "book", Quantity: 2, UnitPrice: 1_999}}}

func place(t *testing.T, a *app.Application) string {
	t.Helper()
	id, _, err := a.PlaceOrder(context.Background(), book, "")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// placedOrder is the application on a new store with one order placed.
func placedOrder(t *testing.T) (*app.Application, *orders, string) {
	t.Helper()
	store := newOrders()
	a := app.New(store)
	return a, store, place(t, a)
}

// pay records the order's charge, as the consumer of payment.events does.
func pay(t *testing.T, a *app.Application, id string) {
	t.Helper()
	if err := a.RecordPaymentSucceeded(context.Background(), id, "ch-1", 3_998); err != nil {
		t.Fatal(err)
	}
}

func TestPlaceOrderPublishesOneOrderPlaced(t *testing.T) {
	store := newOrders()
	a := app.New(store)
	id := place(t, a)
	store.want(t, id, placed)
	o, err := a.Order(context.Background(), id)
	if err != nil || o.Status() != order.StatusPlaced || o.Total() != 3_998 {
		t.Errorf("order %v (%v), want placed with a total of 3998", o, err)
	}
}

func TestRetriedPlaceOrderWithItsIdempotencyKeyStoresOneOrder(t *testing.T) {
	store := newOrders()
	a := app.New(store)
	ctx := context.Background()
	first, replayed, err := a.PlaceOrder(ctx, book, "key-1")
	if err != nil || replayed {
		t.Fatalf("first PlaceOrder: replayed %v, %v", replayed, err)
	}
	again, replayed, err := a.PlaceOrder(ctx, book, "key-1")
	if err != nil || !replayed || again != first {
		t.Errorf("retried PlaceOrder = %s (replayed %v, %v), want the first order %s, replayed", again, replayed, err, first)
	}
	other := book
	other.Items = []order.LineItem{{SKU: "mug", Quantity: 1, UnitPrice: 900}}
	if _, _, err := a.PlaceOrder(ctx, other, "key-1"); !errors.Is(err, app.ErrIdempotencyKeyReused) {
		t.Errorf("the key with another order = %v, want ErrIdempotencyKeyReused", err)
	}
	if len(store.streams) != 1 {
		t.Errorf("%d orders stored, want 1", len(store.streams))
	}
}

func TestCancelAfterPaymentAsksForARefund(t *testing.T) {
	a, store, id := placedOrder(t)
	ctx := context.Background()
	pay(t, a, id)
	o, err := a.CancelOrder(ctx, id, order.AnyVersion, "changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusRefundRequested || o.Version() != 3 {
		t.Errorf("cancelled paid order is %s at version %d, want refund_requested at 3", o.Status(), o.Version())
	}
	store.want(t, id, placed, paid, refundRequested)
	if err := a.RecordRefund(ctx, id, "re-1", 3_998); err != nil {
		t.Fatal(err)
	}
	store.want(t, id, placed, paid, refundRequested, refunded)
}

func TestPaymentAfterCancelIsRefunded(t *testing.T) {
	a, store, id := placedOrder(t)
	ctx := context.Background()
	if _, err := a.CancelOrder(ctx, id, order.AnyVersion, ""); err != nil {
		t.Fatal(err)
	}
	pay(t, a, id)
	store.want(t, id, placed, cancelled, paid, refundRequested)
}

func TestRedeliveredPaymentOutcomeAppliesOnce(t *testing.T) {
	a, store, id := placedOrder(t)
	for range 3 {
		pay(t, a, id)
	}
	store.want(t, id, placed, paid)
}

func TestCancelAtAStaleVersionIsRefusedAndStoresNothing(t *testing.T) {
	a, store, id := placedOrder(t)
	ctx := context.Background()
	pay(t, a, id)
	if _, err := a.CancelOrder(ctx, id, 1, ""); !errors.Is(err, order.ErrVersionMismatch) {
		t.Errorf("cancel at version 1 of an order at 2 = %v, want ErrVersionMismatch", err)
	}
	store.want(t, id, placed, paid)
}

// A payment recorded between loading the order and storing its cancel:
// the cancel is decided again on the paid order, so it asks for a refund
// rather than cancel an order that took money.
func TestCancelRacingAPaymentIsDecidedAgainOnThePaidOrder(t *testing.T) {
	a, store, id := placedOrder(t)
	ctx := context.Background()
	store.beforeAppend = func() {
		if err := a.RecordPaymentSucceeded(ctx, id, "ch-1", 3_998); err != nil {
			t.Error(err)
		}
	}
	o, err := a.CancelOrder(ctx, id, order.AnyVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status() != order.StatusRefundRequested {
		t.Errorf("order is %s, want refund_requested", o.Status())
	}
	store.want(t, id, placed, paid, refundRequested)
}

func TestPaymentTimeoutFailsAnOrderOnceAndALatePaymentIsRefunded(t *testing.T) {
	a, store, id := placedOrder(t)
	a = a.WithDeadlines(placing{store})
	ctx := context.Background()
	for i, want := range []int{1, 0} {
		n, err := a.TimeOutPayments(ctx, time.Nanosecond)
		if err != nil || n != want {
			t.Fatalf("TimeOutPayments #%d = %d, %v; want %d", i+1, n, err, want)
		}
	}
	if o, _ := a.Order(ctx, id); o.Status() != order.StatusPaymentFailed {
		t.Errorf("timed-out order is %s, want payment_failed", o.Status())
	}
	pay(t, a, id)
	store.want(t, id, placed, timedOut, paid, refundRequested)
}
