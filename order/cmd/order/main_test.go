package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/poisontest"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// orderDatabase is a migrated order database with n placed orders, which
// the commands under test use through DATABASE_URL.
func orderDatabase(t *testing.T, n int) (*pgxpool.Pool, []string) {
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("LOG_LEVEL", "warn")
	repo := adapters.NewOrderRepository(pool, nil)
	var ids []string
	for i := range n {
		o, err := order.Place(order.PlaceOrder{OrderID: uuid.NewString(), CustomerID: fmt.Sprint("c-", i%3), Currency: "EUR",
			Items: []order.LineItem{{SKU: "book", Quantity: 1, UnitPrice: 1000}}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Add(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID())
	}
	testenv.WaitEventsReadable(t, pool)
	return pool, ids
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("order %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// projectionLine is the line of `order projections` about one projection.
func projectionLine(t *testing.T, listing, name string) string {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	t.Fatalf("order projections does not list %s:\n%s", name, listing)
	return ""
}

func TestReplayRebuildsAndProjectionsShowsLagAndErrors(t *testing.T) {
	pool, ids := orderDatabase(t, 30)

	listing := runOK(t, "projections")
	if line := projectionLine(t, listing, "order_summaries"); !strings.HasPrefix(line, "order_summaries start 30 ") || !strings.HasSuffix(line, "never - -") {
		t.Errorf("before any projection: %q, want checkpoint start, lag 30 events, never updated, nothing skipped, no error", line)
	}

	out := runOK(t, "replay", "--all")
	for _, p := range projections.All {
		for _, want := range []string{
			p.Name + ": rebuilding into " + p.Name + "_rebuild from the first event (about 30 events)",
			p.Name + ": rebuilt 30 events in ",
			p.Name + ": done: 30 events in ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("order replay --all printed:\n%s\nwithout %q", out, want)
			}
		}
	}
	if strings.Contains(out, "\r") {
		t.Errorf("order replay rewrote lines though its output is not a terminal:\n%q", out)
	}
	var listed int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM order_summaries`).Scan(&listed); err != nil || listed != len(ids) {
		t.Errorf("order_summaries has %d rows after the replay (%v), want %d", listed, err, len(ids))
	}
	listing = runOK(t, "projections")
	if line := projectionLine(t, listing, "order_daily_stats"); !regexp.MustCompile(`^order_daily_stats \d+/\d+ 0 0s \S+Z - -$`).MatchString(line) {
		t.Errorf("after the replay: %q, want a checkpoint, no lag, nothing skipped", line)
	}

	testenv.Go(t, "projector", func(ctx context.Context) error {
		s := projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100}
		return projections.Run(ctx, pool, projections.All, s, slog.New(slog.DiscardHandler))
	})

	// An event of a type this code does not know (a newer version wrote
	// it) is passed over: no lag, and the listing names it.
	shipped := eventstore.Event{ID: uuid.NewString(), Type: "order.OrderShipped", SchemaVersion: 1, Payload: []byte(`{}`)}
	if err := eventstore.Append(context.Background(), pool, adapters.StreamID(ids[1]), 1, eventstore.Context{}, shipped); err != nil {
		t.Fatal(err)
	}
	// Each projection reads on its own: wait until every one lists it.
	testenv.Eventually(t, 60*time.Second, "the skipped event listed by every projection", func() bool {
		listing := runOK(t, "projections")
		for _, p := range projections.Names() {
			if !strings.Contains(projectionLine(t, listing, p), "order.OrderShipped") {
				return false
			}
		}
		return true
	})
	for _, p := range projections.Names() {
		line := projectionLine(t, runOK(t, "projections"), p)
		if !regexp.MustCompile(`^` + p + ` \d+/\d+ 0 0s \S+Z order.OrderShipped v1: 1 events -$`).MatchString(line) {
			t.Errorf("with an unknown event: %q, want no lag and the skipped type", line)
		}
	}
	runOK(t, "replay", "--all") // rebuilds the counts with the tables, not adds to them
	if line := projectionLine(t, runOK(t, "projections"), "order_summaries"); !strings.Contains(line, " order.OrderShipped v1: 1 events ") {
		t.Errorf("after a replay: %q, want the skipped event counted once", line)
	}

	// An event of a known type that the projections cannot read stops them
	// there; the listing shows the lag, its age and the error.
	bad := eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderPaidType, SchemaVersion: contracts.OrderPaidVersion, Payload: []byte(`{"charge_id": 42}`)}
	if err := eventstore.Append(context.Background(), pool, adapters.StreamID(ids[0]), 1, eventstore.Context{}, bad); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the failure listed", func() bool {
		return strings.Contains(projectionLine(t, runOK(t, "projections"), "order_summaries"), "cannot unmarshal")
	})
	line := projectionLine(t, runOK(t, "projections"), "order_summaries")
	if !regexp.MustCompile(`^order_summaries \d+/\d+ 1 \S+ \S+Z order.OrderShipped v1: 1 events \S+Z .*decode event \S+ \(order.OrderPaid v1\).*cannot unmarshal`).MatchString(line) {
		t.Errorf("with a failing event: %q, want lag 1, its age and the error", line)
	}
}

// A replay of a projection that is being replayed is refused: exit status 1
// and one readable line.
func TestReplayIsRefusedWhileAnotherReplayRuns(t *testing.T) {
	pool, _ := orderDatabase(t, 5)
	rebuilding, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := projections.Replay(context.Background(), pool, projections.OrderSummaries, projections.ReplayOptions{
			Progress: func(projections.Progress) { once.Do(func() { close(rebuilding); <-finish }) },
		})
		first <- err
	}()
	<-rebuilding
	defer func() {
		close(finish)
		if err := <-first; err != nil {
			t.Errorf("the first replay: %v", err)
		}
	}()

	bin := testenv.Build(t, "github.com/es-outbox/reference/order/cmd/order")
	cmd := exec.Command(bin, "replay", "--projection", "order_summaries")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("order replay while another runs: %v, want exit status 1\n%s%s", err, stdout.String(), stderr.String())
	}
	if want := "order: replay order_summaries: another replay of the projection is running\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	runOK(t, "replay", "--projection", "order_daily_stats") // another projection is not locked
}

func TestCommandErrorsAreOneLine(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?sslmode=disable") // nothing listens there
	cases := map[string][]string{
		"unknown command":       {"frobnicate"},
		"unknown projection":    {"replay", "--projection", "order_totals"},
		"neither name nor all":  {"replay"},
		"both name and all":     {"replay", "--all", "--projection", "order_summaries"},
		"bad flag":              {"replay", "--everything"},
		"bad batch size":        {"replay", "--all", "--batch-size", "0"},
		"stray argument":        {"replay", "--all", "now"},
		"flag of projections":   {"projections", "--json"},
		"argument of serve":     {"serve", "now"},
		"database unreachable":  {"projections"},
		"no value for the flag": {"replay", "--projection"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(args, &out)
			if err == nil || errors.Is(err, flag.ErrHelp) || strings.Contains(err.Error(), "\n") || out.Len() > 0 {
				t.Errorf("order %v = %v (printed %q), want one line of error", args, err, out.String())
			}
		})
	}
	for _, args := range [][]string{{"replay", "--help"}, {"projections", "-h"}} {
		var out bytes.Buffer
		if err := run(args, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: order "+args[0]) {
			t.Errorf("order %v = %v, printed %q; want its usage", args, err, out.String())
		}
	}
	var out bytes.Buffer
	_ = run([]string{"replay", "--help"}, &out)
	if !strings.Contains(out.String(), "order_summaries, order_daily_stats") {
		t.Errorf("order replay --help does not name the projections:\n%s", out.String())
	}
}

// order poison is the shared poison command (shared/poison/poisoncli tests
// it whole) on the order database: list, show and discard an entry.
func TestPoisonCommands(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("KAFKA_BROKERS", testenv.Kafka(t)[0])
	_, store := poisontest.NewQueue(t, pool, []string{"127.0.0.1:1"})
	if out := runOK(t, "poison", "list"); !strings.Contains(out, "0-3  ") || !strings.Contains(out, "order.events 2/7") {
		t.Errorf("order poison list printed:\n%s", out)
	}
	if out := runOK(t, "poison", "requeue", "--dry-run", "0-3"); !strings.Contains(out, "would requeue 0-3 to order.events partition 2") {
		t.Errorf("order poison requeue --dry-run printed:\n%s", out)
	}
	runOK(t, "poison", "discard", "--reason", "test data", "--by", "ann", "0-3")
	if e, err := store.Get(context.Background(), "0-3"); err != nil || e.Status != "discarded" || e.ChangedBy != "ann" {
		t.Errorf("after order poison discard: %+v, %v", e, err)
	}
	var out bytes.Buffer
	if err := run([]string{"poison", "--help"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: order poison") {
		t.Errorf("order poison --help = %v, printed %q", err, out.String())
	}
	if err := run([]string{"poison", "frobnicate"}, &bytes.Buffer{}); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("order poison frobnicate = %v, want one line of error", err)
	}
}
