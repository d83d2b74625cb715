package poisonstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

func poisonedEntry(partition int32, offset int64) poison.Entry {
	return poison.Entry{
		ID:         poison.IDFor(partition, offset),
		Record:     poison.Position{Topic: "payment.poison", Partition: partition, Offset: offset},
		PoisonedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Reason:     "order.OrderPlaced payload is not valid: unexpected end of JSON input",
		Origin:     poison.Position{Topic: "order.events", Partition: 2, Offset: 7},
		Key:        "order-broken", Handler: "charge_order", EventType: "order.OrderPlaced", MessageID: "m-1",
		Metadata: map[string]string{"event_type": "order.OrderPlaced", "reason_poisoned": "..."},
		Payload:  []byte(`{"order_id": "bro`),
		Status:   poison.StatusNew,
	}
}

func TestPoisonStoreKeepsARedeliveredRecordOnce(t *testing.T) {
	pool, _ := testenv.Database(t, poisonstore.Migrations)
	store := poisonstore.NewStore(pool)
	ctx := context.Background()

	for i, want := range []bool{true, false} {
		added, err := store.Add(ctx, poisonedEntry(0, 3))
		if err != nil || added != want {
			t.Fatalf("Add #%d = %v, %v; want %v", i+1, added, err, want)
		}
	}
	entries, err := store.List(ctx, "")
	if err != nil || len(entries) != 1 {
		t.Fatalf("List = %d entries, %v; want 1", len(entries), err)
	}
	got := entries[0]
	if got.ID != "0-3" || got.Origin.String() != "order.events 2/7" || string(got.Payload) != `{"order_id": "bro` ||
		got.Metadata["event_type"] != "order.OrderPlaced" || got.Status != poison.StatusNew || !got.PoisonedAt.Equal(poisonedEntry(0, 3).PoisonedAt) {
		t.Errorf("stored entry = %+v", got)
	}
	if depth, err := store.Depth(ctx); depth != 1 || err != nil {
		t.Errorf("Depth = %d, %v; want 1", depth, err)
	}
}

func TestPoisonStoreTakesWhatPostgresTextCannot(t *testing.T) {
	pool, _ := testenv.Database(t, poisonstore.Migrations)
	store := poisonstore.NewStore(pool)
	e := poisonedEntry(1, 0)
	e.Origin = poison.Position{Topic: "order.events", Partition: -1, Offset: -1} // a record that does not say
	e.Key = "k\x00\xff"
	e.Reason = "bad \x00 byte"
	e.Metadata = map[string]string{"bin\x00": "\xff\xfe", "event_type": "x"}
	e.Payload = []byte{0, 1, 2, 0xff}
	if _, err := store.Add(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != e.Key || string(got.Payload) != string(e.Payload) || got.Origin.Partition != -1 || got.Origin.String() != "order.events" {
		t.Errorf("stored key %q payload %v origin %s; want the bytes as they were and no partition", got.Key, got.Payload, got.Origin)
	}
}

func TestPoisonStoreUpdateChangesANewEntryOnce(t *testing.T) {
	pool, _ := testenv.Database(t, poisonstore.Migrations)
	store := poisonstore.NewStore(pool)
	ctx := context.Background()
	if _, err := store.Add(ctx, poisonedEntry(0, 1)); err != nil {
		t.Fatal(err)
	}
	discard := func(_ context.Context, e *poison.Entry) error { return e.MarkDiscarded("test data", "ann", time.Now()) }
	if e, err := store.Update(ctx, "0-1", discard); err != nil || e.Status != poison.StatusDiscarded {
		t.Fatalf("first discard = %+v, %v", e, err)
	}
	e, err := store.Update(ctx, "0-1", discard)
	if !errors.Is(err, poison.ErrHandled) || e.Status != poison.StatusDiscarded || e.ChangedBy != "ann" || e.ChangeReason != "test data" {
		t.Errorf("second discard = %+v, %v; want ErrHandled and the entry as discarded by ann", e, err)
	}
	if _, err := store.Update(ctx, "9-9", discard); !errors.Is(err, poison.ErrNotFound) {
		t.Errorf("Update of an unknown id: %v, want ErrNotFound", err)
	}
	if depth, err := store.Depth(ctx); depth != 0 || err != nil {
		t.Errorf("Depth = %d, %v; want 0", depth, err)
	}
}
