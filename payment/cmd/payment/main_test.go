package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/domain/poison"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
)

// withPoisonStore points the commands at a fresh payment database holding
// one new entry, "0-3", poisoned from order.events, and a fresh broker.
func withPoisonStore(t *testing.T) (store *adapters.PoisonStore, brokers []string) {
	t.Helper()
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers = testenv.Kafka(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("KAFKA_BROKERS", brokers[0])
	store = adapters.NewPoisonStore(pool)
	_, err := store.Add(context.Background(), poison.Entry{
		ID: "0-3", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 3},
		PoisonedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Reason:     "order.OrderPlaced payload is not valid: unexpected end of JSON input",
		Origin:     poison.Position{Topic: "order.events", Partition: 2, Offset: 7}, Key: "order-broken",
		Handler: "charge_order", EventType: "order.OrderPlaced", MessageID: "event-1",
		Metadata: map[string]string{
			"event_id": "event-1", "event_type": "order.OrderPlaced", "topic_poisoned": "order.events",
			"reason_poisoned": "order.OrderPlaced payload is not valid: unexpected end of JSON input",
		},
		Payload: []byte(`{"order_id": "bro`), Status: poison.StatusNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	return store, brokers
}

// runOK runs the command and returns its output, failing the test on an error.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("payment %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

func assertContains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, out)
		}
	}
}

func TestPoisonListAndShow(t *testing.T) {
	withPoisonStore(t)

	out := runOK(t, "poison", "list")
	assertContains(t, "poison list", out, "0-3", "2026-11-27T10:00:00Z", "new", "order.events 2/7", "charge_order",
		"order.OrderPlaced", "order-broken", "unexpected end of JSON input", `{"order_id": "bro`)

	out = runOK(t, "poison", "list", "--json")
	var listed ports.PoisonEntryJSON
	if err := json.Unmarshal([]byte(out), &listed); err != nil || listed.Key != "order-broken" || listed.Metadata["event_id"] != "event-1" {
		t.Errorf("--json printed %q (%v)", out, err)
	}
	assertContains(t, "poison list --status discarded", runOK(t, "poison", "list", "--status", "discarded"), "No discarded entries")

	out = runOK(t, "poison", "show", "0-3")
	assertContains(t, "poison show", out, "order.events 2/7", "payment.poison 0/3", "event-1", "reason_poisoned",
		"Payload (17 bytes)", `{"order_id": "bro`)
}

func TestPoisonRequeueThenDiscard(t *testing.T) {
	_, brokers := withPoisonStore(t)

	out := runOK(t, "poison", "requeue", "0-3", "--dry-run")
	assertContains(t, "requeue --dry-run", out, "would requeue 0-3 to order.events")
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 0 {
		t.Fatalf("a dry run published %d records", n)
	}

	assertContains(t, "requeue", runOK(t, "poison", "requeue", "--by", "ann", "0-3"), "requeued 0-3 to order.events ")
	assertContains(t, "second requeue", runOK(t, "poison", "requeue", "0-3"), "0-3 is requeued to order.events", "by ann", "nothing done")
	assertContains(t, "requeue --all", runOK(t, "poison", "requeue", "--all"), "No new entries to requeue.")
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 1 {
		t.Errorf("order.events holds %d records after requeueing one entry three times, want 1", n)
	}

	assertContains(t, "discard of a requeued entry", runOK(t, "poison", "discard", "0-3", "--reason", "dup"), "nothing done")
	assertContains(t, "poison list --status requeued", runOK(t, "poison", "list", "--status", "requeued"), "0-3", "requeued")
	assertContains(t, "poison list", runOK(t, "poison", "list"), "No new entries")
}

func TestPoisonDiscard(t *testing.T) {
	store, _ := withPoisonStore(t)
	assertContains(t, "discard", runOK(t, "poison", "discard", "--reason", "test order", "--by", "ann", "0-3"), "discarded 0-3")
	e, err := store.Get(context.Background(), "0-3")
	if err != nil || e.Status != poison.StatusDiscarded || e.ChangedBy != "ann" || e.ChangeReason != "test order" {
		t.Errorf("entry after discard = %+v, %v", e, err)
	}
	assertContains(t, "show", runOK(t, "poison", "show", "0-3"), "discarded by ann", "test order")
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"poison", "--help"}, {"poison", "list", "--help"}, {"poison", "show", "--help"},
		{"poison", "requeue", "--help"}, {"poison", "discard", "--help"},
	} {
		var out bytes.Buffer
		if err := run(args, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: payment") {
			t.Errorf("payment %s = %v, printed %q; want usage", strings.Join(args, " "), err, out.String())
		}
	}
}

func TestCommandErrors(t *testing.T) {
	store, _ := withPoisonStore(t)
	cases := map[string][]string{
		"unknown command":           {"frobnicate"},
		"poison without verb":       {"poison"},
		"unknown poison verb":       {"poison", "frobnicate"},
		"bad flag":                  {"poison", "list", "--colour"},
		"bad status":                {"poison", "list", "--status", "lost"},
		"show without id":           {"poison", "show"},
		"show of an unknown id":     {"poison", "show", "9-9"},
		"requeue of an unknown id":  {"poison", "requeue", "0-3", "9-9"},
		"requeue of nothing":        {"poison", "requeue"},
		"requeue of ids and --all":  {"poison", "requeue", "--all", "0-3"},
		"discard without --reason":  {"poison", "discard", "0-3"},
		"discard of an unknown id":  {"poison", "discard", "--reason", "x", "9-9"},
		"discard without an id":     {"poison", "discard", "--reason", "x"},
		"migrate with an argument":  {"migrate", "now"},
		"bad flag of the top level": {"--colour"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			err := run(args, &bytes.Buffer{})
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("run(%v) = %v, want one line of error", args, err)
			}
		})
	}
	if e, _ := store.Get(context.Background(), "0-3"); e.Status != poison.StatusNew {
		t.Errorf("failed commands left the entry %s, want new", e.Status)
	}
}

func TestRequeueWithoutABrokerFailsFastAndLeavesTheEntryNew(t *testing.T) {
	store, _ := withPoisonStore(t)
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:1") // nothing listens there
	started := time.Now()
	err := run([]string{"poison", "requeue", "0-3"}, &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("requeue without a broker = %v, want one line naming the broker", err)
	}
	t.Logf("requeue without a broker failed after %s: %v", time.Since(started).Round(time.Millisecond), err)
	if e, _ := store.Get(context.Background(), "0-3"); e.Status != poison.StatusNew {
		t.Errorf("a failed requeue left the entry %s, want new", e.Status)
	}
}
