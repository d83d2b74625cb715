package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/shared/devtools/poisontest"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// withPoisonStore points the commands at a fresh payment database holding
// one new entry, "0-3", poisoned from order.events, and a fresh broker.
func withPoisonStore(t *testing.T) (store *poisonstore.Store, brokers []string) {
	t.Helper()
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	brokers = testenv.Kafka(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("KAFKA_BROKERS", brokers[0])
	_, store = poisontest.NewQueue(t, pool, brokers)
	return store, brokers
}

// payment poison is the shared poison command (shared/poison/poisoncli
// tests it whole) on the payment database.
func TestPoisonList(t *testing.T) {
	withPoisonStore(t)
	var out bytes.Buffer
	if err := run([]string{"poison", "list"}, &out); err != nil || !strings.Contains(out.String(), "0-3  ") || !strings.Contains(out.String(), "order-broken") {
		t.Errorf("payment poison list = %v, printed:\n%s", err, out.String())
	}
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
	withPoisonStore(t)
	for name, args := range map[string][]string{
		"unknown command":           {"frobnicate"},
		"poison without verb":       {"poison"},
		"bad poison flag":           {"poison", "list", "--colour"},
		"migrate with an argument":  {"migrate", "now"},
		"bad flag of the top level": {"--colour"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(args, &bytes.Buffer{})
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("run(%v) = %v, want one line of error", args, err)
			}
		})
	}
}
