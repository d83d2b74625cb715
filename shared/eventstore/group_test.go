package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// noted is a test event; its Text is stored as given.
type noted struct{ Text string }

func (noted) EventType() string  { return "test.Noted" }
func (noted) SchemaVersion() int { return 1 }

// note is the smallest aggregate: changes after a version.
type note struct {
	version int64
	changes []noted
}

func (n *note) Changes() []noted       { return n.changes }
func (n *note) OriginalVersion() int64 { return n.version }
func (n *note) MarkCommitted()         { n.version += int64(len(n.changes)); n.changes = nil }

// commitAll starts one piece of work per stream on g, all before any
// commits, then commits each stream's aggregate concurrently and returns
// each Commit's error by stream.
func commitAll(g *eventstore.GroupCommit, aggregates map[string]*note) map[string]error {
	type result struct {
		stream string
		err    error
	}
	results := make(chan result, len(aggregates))
	starts := map[string]context.Context{}
	ends := map[string]func(){}
	for stream := range aggregates {
		starts[stream], ends[stream] = g.Start(context.Background())
	}
	for stream, a := range aggregates {
		go func() {
			defer ends[stream]()
			results <- result{stream, eventstore.Commit[noted](starts[stream], nil, stream, a, eventstore.Context{})}
		}()
	}
	errs := map[string]error{}
	for range aggregates {
		r := <-results
		errs[r.stream] = r.err
	}
	return errs
}

// transactions returns the transaction ids the streams' events were stored by.
func transactions(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT transaction_id::text, count(*) FROM events GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	txs := map[string]int{}
	for rows.Next() {
		var tx string
		var n int
		if err := rows.Scan(&tx, &n); err != nil {
			t.Fatal(err)
		}
		txs[tx] = n
	}
	return txs
}

func TestAGroupCommitStoresTheCommitsOfWorkInProgressInOneTransaction(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	// A delay longer than the test: the group is stored because every
	// piece of work waits in it.
	g := eventstore.NewGroupCommit(pool, time.Hour)
	aggregates := map[string]*note{}
	for i := range 5 {
		aggregates[fmt.Sprintf("s-%d", i)] = &note{changes: []noted{{"first"}, {"second"}}}
	}
	for stream, err := range commitAll(g, aggregates) {
		if err != nil {
			t.Errorf("commit %s: %v", stream, err)
		}
	}
	for stream, a := range aggregates {
		events, err := eventstore.Load(context.Background(), pool, stream)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 || events[0].StreamVersion != 1 || events[1].StreamVersion != 2 {
			t.Errorf("%s holds %d events, want its 2 at versions 1 and 2", stream, len(events))
		}
		if a.OriginalVersion() != 2 || len(a.Changes()) != 0 {
			t.Errorf("%s: aggregate at version %d with %d changes, want its changes marked committed", stream, a.OriginalVersion(), len(a.Changes()))
		}
	}
	if txs := transactions(t, pool); len(txs) != 1 {
		t.Errorf("the 10 events were stored by %d transactions (%v), want 1", len(txs), txs)
	}
	if statements, appends := g.Stats(); statements != 1 || appends != 5 {
		t.Errorf("%d statements stored %d appends, want 1 for 5", statements, appends)
	}
}

func TestAFailingAppendOfAGroupFailsAloneAndTheOthersAreStored(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	if err := eventstore.Append(ctx, pool, "s-taken", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	g := eventstore.NewGroupCommit(pool, time.Hour)
	aggregates := map[string]*note{
		"s-taken":   {changes: []noted{{"decided on a stale version"}}}, // the stream is at 1, not 0
		"s-refused": {changes: []noted{{"NUL \x00 is no text PostgreSQL stores"}}},
		"s-1":       {changes: []noted{{"fine"}}},
		"s-2":       {changes: []noted{{"fine"}}},
	}
	errs := commitAll(g, aggregates)
	if err := errs["s-taken"]; !errors.Is(err, eventstore.ErrVersionConflict) {
		t.Errorf("the stale append returned %v, want ErrVersionConflict", err)
	}
	if errs["s-refused"] == nil {
		t.Error("the append PostgreSQL refuses returned no error")
	}
	for _, stream := range []string{"s-1", "s-2"} {
		if errs[stream] != nil {
			t.Errorf("%s: %v, want it stored", stream, errs[stream])
		}
		if events, err := eventstore.Load(ctx, pool, stream); err != nil || len(events) != 1 {
			t.Errorf("%s holds %d events (%v), want 1", stream, len(events), err)
		}
	}
	if events, _ := eventstore.Load(ctx, pool, "s-taken"); len(events) != 1 {
		t.Errorf("s-taken holds %d events, want its first alone", len(events))
	}
	if _, err := eventstore.Load(ctx, pool, "s-refused"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("s-refused: %v, want nothing stored", err)
	}
}

func TestWorkThatEndsWithoutCommittingDoesNotHoldTheGroupBack(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	_, endIdle := g.Start(context.Background()) // a message the handler skips
	errs := make(chan error, 2)
	for _, stream := range []string{"s-1", "s-2"} {
		ctx, end := g.Start(context.Background())
		go func() {
			defer end()
			errs <- eventstore.Commit[noted](ctx, nil, stream, &note{changes: []noted{{"x"}}}, eventstore.Context{})
		}()
	}
	// Both commits wait in the group (for the idle work) until it ends.
	testenv.Eventually(t, 10*time.Second, "both commits waiting", func() bool {
		return len(transactions(t, pool)) == 0 && eventstore.GroupWaiting(g) == 2
	})
	endIdle()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if txs := transactions(t, pool); len(txs) != 1 {
		t.Errorf("stored by %d transactions, want 1", len(txs))
	}
}

func TestWorkInProgressHoldsTheGroupBackAtMostItsDelay(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	g := eventstore.NewGroupCommit(pool, 20*time.Millisecond)
	_, endStuck := g.Start(context.Background()) // a gateway that does not answer
	defer endStuck()
	ctx, end := g.Start(context.Background())
	defer end()
	if err := eventstore.Commit[noted](ctx, nil, "s-1", &note{changes: []noted{{"x"}}}, eventstore.Context{}); err != nil {
		t.Fatal(err)
	}
	if events, err := eventstore.Load(context.Background(), pool, "s-1"); err != nil || len(events) != 1 {
		t.Errorf("s-1 holds %d events (%v), want 1", len(events), err)
	}
}
