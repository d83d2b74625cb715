package poisoncli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/poisontest"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisoncli"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// command is the poison command of a service named "test", on the store
// and brokers of the test (see withPoisonStore).
var command poisoncli.Command

// withPoisonStore points the commands at a fresh database holding one new
// entry, "0-3", poisoned from order.events partition 2, and at brokers (a
// fresh one if none are given).
func withPoisonStore(t *testing.T, brokers ...string) (*poisonstore.Store, []string) {
	t.Helper()
	pool, _ := testenv.Database(t, poisonstore.Migrations)
	kafka := brokers
	if len(kafka) == 0 {
		kafka = testenv.Kafka(t)
	}
	queue, store := poisontest.NewQueue(t, pool, kafka)
	command = poisoncli.Command{Service: "test", Open: func(context.Context, *slog.Logger) (*poisonapp.Queue, func(), error) {
		return queue, func() {}, nil
	}}
	return store, kafka
}

// run runs `test args...`: args[0] must be "poison".
func run(args []string, stdout io.Writer) error {
	c := command
	c.Stdout = stdout
	return c.Run(context.Background(), args[1:])
}

// runOK runs the command and returns its output, failing the test on an error.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("test %s: %v", strings.Join(args, " "), err)
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

func TestHelp(t *testing.T) {
	withPoisonStore(t, "127.0.0.1:1")
	for _, args := range [][]string{{"poison", "--help"}, {"poison", "list", "--help"}, {"poison", "show", "--help"},
		{"poison", "requeue", "--help"}, {"poison", "discard", "--help"}} {
		var out bytes.Buffer
		if err := run(args, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: test poison") {
			t.Errorf("test %s = %v, printed %q; want usage", strings.Join(args, " "), err, out.String())
		}
	}
}

func TestPoisonListAndShow(t *testing.T) {
	withPoisonStore(t)

	out := runOK(t, "poison", "list")
	assertContains(t, "poison list", out, "0-3", "2026-11-27T10:00:00Z", "new", "order.events 2/7", "charge_order",
		"order.OrderPlaced", "order-broken", "unexpected end of JSON input", `{"order_id": "bro`)

	out = runOK(t, "poison", "list", "--json")
	var listed poisonhttp.PoisonEntryJSON
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
	assertContains(t, "requeue --dry-run", out, "would requeue 0-3 to order.events partition 2")
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 0 {
		t.Fatalf("a dry run published %d records", n)
	}

	assertContains(t, "requeue", runOK(t, "poison", "requeue", "--by", "ann", "0-3"), "requeued 0-3 to order.events 2/")
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

func TestCommandErrors(t *testing.T) {
	store, _ := withPoisonStore(t)
	cases := map[string][]string{
		"poison without verb":      {"poison"},
		"unknown poison verb":      {"poison", "frobnicate"},
		"bad flag":                 {"poison", "list", "--colour"},
		"bad status":               {"poison", "list", "--status", "lost"},
		"show without id":          {"poison", "show"},
		"show of an unknown id":    {"poison", "show", "9-9"},
		"requeue of an unknown id": {"poison", "requeue", "0-3", "9-9"},
		"requeue of nothing":       {"poison", "requeue"},
		"requeue of ids and --all": {"poison", "requeue", "--all", "0-3"},
		"discard without --reason": {"poison", "discard", "0-3"},
		"discard of an unknown id": {"poison", "discard", "--reason", "x", "9-9"},
		"discard without an id":    {"poison", "discard", "--reason", "x"},
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
	store, _ := withPoisonStore(t, "127.0.0.1:1") // nothing listens there
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
