package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
func commitAll(t *testing.T, g *eventstore.GroupCommit, aggregates map[string]*note) map[string]error {
	work := map[string]func(context.Context) error{}
	for stream, a := range aggregates {
		work[stream] = func(ctx context.Context) error {
			return eventstore.Commit[noted](ctx, nil, stream, a, eventstore.Context{})
		}
	}
	return workAll(t, g, work)
}

// loadAll is commitAll for loads from pool: each stream's events and error.
func loadAll(t *testing.T, g *eventstore.GroupCommit, pool *pgxpool.Pool, streams ...string) (map[string][]eventstore.RecordedEvent, map[string]error) {
	work := map[string]func(context.Context) error{}
	events := map[string][]eventstore.RecordedEvent{}
	var mu sync.Mutex
	for _, stream := range streams {
		work[stream] = func(ctx context.Context) error {
			loaded, err := eventstore.Load(ctx, pool, stream)
			mu.Lock()
			defer mu.Unlock()
			events[stream] = loaded
			return err
		}
	}
	return events, workAll(t, g, work)
}

// workAll starts one piece of work per name on g, all before any of them
// runs, then runs each concurrently and returns each one's error by name.
// A group with every piece of work waiting in it goes at once: if it has
// not gone within a minute (a bound far above any run here), it waits for
// nothing and the test fails.
func workAll(t *testing.T, g *eventstore.GroupCommit, work map[string]func(context.Context) error) map[string]error {
	t.Helper()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(work))
	starts := map[string]context.Context{}
	ends := map[string]func(){}
	for name := range work {
		starts[name], ends[name] = g.Start(context.Background())
	}
	for name, do := range work {
		go func() {
			defer ends[name]()
			results <- result{name, do(starts[name])}
		}()
	}
	errs := map[string]error{}
	timeout := time.After(time.Minute)
	for range work {
		select {
		case r := <-results:
			errs[r.name] = r.err
		case <-timeout:
			t.Fatalf("%d of %d pieces of work still wait in a group all of them have joined", len(work)-len(errs), len(work))
		}
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
	for stream, err := range commitAll(t, g, aggregates) {
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
	if stats := g.Stats(); stats.Statements != 1 || stats.Appends != 5 {
		t.Errorf("%d statements stored %d appends, want 1 for 5", stats.Statements, stats.Appends)
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
	errs := commitAll(t, g, aggregates)
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

func TestWorkThatEndsWithoutJoiningDoesNotHoldTheGroupBack(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	appendEvents(t, pool, "s-loaded", 1)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	_, endIdle := g.Start(context.Background()) // a message the handler skips
	errs := make(chan error, 2)
	for _, do := range []func(context.Context) error{
		func(ctx context.Context) error {
			return eventstore.Commit[noted](ctx, nil, "s-committed", &note{changes: []noted{{"x"}}}, eventstore.Context{})
		},
		func(ctx context.Context) error {
			_, err := eventstore.Load(ctx, pool, "s-loaded")
			return err
		},
	} {
		ctx, end := g.Start(context.Background())
		go func() {
			defer end()
			errs <- do(ctx)
		}()
	}
	// The commit and the load wait in the group (for the idle work) until
	// it ends.
	testenv.Eventually(t, 10*time.Second, "the commit and the load waiting", func() bool {
		return eventstore.GroupWaiting(g) == 2
	})
	if stats := g.Stats(); stats != (eventstore.GroupStats{}) {
		t.Fatalf("stats %+v before the idle work ended, want the group waiting for it", stats)
	}
	endIdle()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if stats := g.Stats(); stats != (eventstore.GroupStats{Statements: 1, Appends: 1, Queries: 1, Loads: 1}) {
		t.Errorf("stats %+v, want one statement and one query", stats)
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

// appendEvents stores n events in a new stream and returns their ids.
func appendEvents(t *testing.T, pool *pgxpool.Pool, stream string, n int) []string {
	t.Helper()
	events := make([]eventstore.Event, n)
	ids := make([]string, n)
	for i := range events {
		events[i] = event("test.A")
		ids[i] = events[i].ID
	}
	if err := eventstore.Append(context.Background(), pool, stream, 0, eventstore.Context{}, events...); err != nil {
		t.Fatal(err)
	}
	return ids
}

// eventIDs are the ids of events, in their order, with their versions checked.
func eventIDs(t *testing.T, stream string, events []eventstore.RecordedEvent) []string {
	t.Helper()
	ids := make([]string, len(events))
	for i, e := range events {
		if e.StreamID != stream || e.StreamVersion != int64(i)+1 {
			t.Errorf("load of %s: event %d is %s at version %d", stream, i, e.StreamID, e.StreamVersion)
		}
		ids[i] = e.ID
	}
	return ids
}

func TestTheLoadsOfWorkInProgressAreServedByOneQuery(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	want := map[string][]string{}
	for i, stream := range []string{"s-1", "s-2", "s-3"} {
		want[stream] = appendEvents(t, pool, stream, i+1)
	}
	g := eventstore.NewGroupCommit(pool, time.Hour)
	events, errs := loadAll(t, g, pool, "s-1", "s-2", "s-3")
	for stream, wantIDs := range want {
		if errs[stream] != nil {
			t.Errorf("load %s: %v", stream, errs[stream])
		}
		if got := eventIDs(t, stream, events[stream]); !slices.Equal(got, wantIDs) {
			t.Errorf("load of %s gave events %v, want %v", stream, got, wantIDs)
		}
	}
	if stats := g.Stats(); stats.Queries != 1 || stats.Loads != 3 {
		t.Errorf("%d queries served %d loads, want 1 for 3", stats.Queries, stats.Loads)
	}
}

func TestAStreamWithNoEventsIsNotFoundForItsLoadAloneInAGroup(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	want := appendEvents(t, pool, "s-1", 2)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	events, errs := loadAll(t, g, pool, "s-1", "s-missing")
	if !errors.Is(errs["s-missing"], eventstore.ErrStreamNotFound) || events["s-missing"] != nil {
		t.Errorf("load of s-missing gave %d events and %v, want ErrStreamNotFound", len(events["s-missing"]), errs["s-missing"])
	}
	if got := eventIDs(t, "s-1", events["s-1"]); errs["s-1"] != nil || !slices.Equal(got, want) {
		t.Errorf("load of s-1 gave %v and %v, want events %v", got, errs["s-1"], want)
	}
	if stats := g.Stats(); stats.Queries != 1 {
		t.Errorf("%d queries, want 1", stats.Queries)
	}
}

func TestAStreamThatCannotBeReadFailsItsLoadAloneInAGroup(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	want := appendEvents(t, pool, "s-1", 1)
	// Metadata that is not a map of strings: the row does not scan.
	if _, err := pool.Exec(context.Background(), `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata)
		VALUES ('s-bad', 1, gen_random_uuid(), 'test.A', 1, '{}', '{"n": 1}')`); err != nil {
		t.Fatal(err)
	}
	g := eventstore.NewGroupCommit(pool, time.Hour)
	events, errs := loadAll(t, g, pool, "s-1", "s-bad")
	if errs["s-bad"] == nil || errors.Is(errs["s-bad"], eventstore.ErrStreamNotFound) {
		t.Errorf("load of s-bad: %v, want the error reading its row", errs["s-bad"])
	}
	if got := eventIDs(t, "s-1", events["s-1"]); errs["s-1"] != nil || !slices.Equal(got, want) {
		t.Errorf("load of s-1 gave %v and %v, want events %v", got, errs["s-1"], want)
	}
}

func TestALoadInATransactionReadsInsideItAndNotInTheGroup(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	ctx, end := g.Start(context.Background())
	defer end()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	written := event("test.A")
	if err := eventstore.Append(ctx, tx, "s-1", 0, eventstore.Context{}, written); err != nil {
		t.Fatal(err)
	}
	events, err := eventstore.Load(ctx, tx, "s-1")
	if err != nil || len(events) != 1 || events[0].ID != written.ID {
		t.Errorf("load in the transaction gave %d events and %v, want the one it wrote", len(events), err)
	}
	if stats := g.Stats(); stats.Loads != 0 {
		t.Errorf("the group served %d loads, want the transaction's read alone", stats.Loads)
	}
}

func TestALoadOfTheOnlyWorkInProgressGoesAtOnce(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	want := appendEvents(t, pool, "s-1", 1)
	// An hour's delay: the load is served because its work is all there
	// is (workAll fails if it waits for the delay).
	g := eventstore.NewGroupCommit(pool, time.Hour)
	events, errs := loadAll(t, g, pool, "s-1")
	if got := eventIDs(t, "s-1", events["s-1"]); errs["s-1"] != nil || !slices.Equal(got, want) {
		t.Errorf("load of s-1 gave %v and %v, want events %v", got, errs["s-1"], want)
	}
	if stats := g.Stats(); stats.Queries != 1 || stats.Loads != 1 {
		t.Errorf("%d queries served %d loads, want 1 for 1", stats.Queries, stats.Loads)
	}
}

func TestWorkWaitingInAnAppendDoesNotHoldTheLoadsBack(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	appendEvents(t, pool, "s-1", 1)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	// Either piece of work is the last to wait, in a load or in an
	// append: both go at once, the load before the append that follows it.
	errs := workAll(t, g, map[string]func(context.Context) error{
		"load, then commit": func(ctx context.Context) error {
			events, err := eventstore.Load(ctx, pool, "s-1")
			if err != nil {
				return err
			}
			return eventstore.Commit[noted](ctx, nil, "s-1", &note{version: int64(len(events)), changes: []noted{{"x"}}}, eventstore.Context{})
		},
		"commit": func(ctx context.Context) error {
			return eventstore.Commit[noted](ctx, nil, "s-2", &note{changes: []noted{{"x"}}}, eventstore.Context{})
		},
	})
	for name, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if stats := g.Stats(); stats != (eventstore.GroupStats{Statements: 2, Appends: 2, Queries: 1, Loads: 1}) {
		t.Errorf("stats %+v, want the load and the other append together, then the second append", stats)
	}
}

func TestALoadWhoseContextIsDoneReturnsItsError(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	_, endStuck := g.Start(context.Background()) // a gateway that does not answer
	defer endStuck()
	ctx, end := g.Start(context.Background())
	defer end()
	ctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() {
		_, err := eventstore.Load(ctx, pool, "s-1")
		errs <- err
	}()
	testenv.Eventually(t, 10*time.Second, "the load waiting", func() bool { return eventstore.GroupWaiting(g) == 1 })
	cancel()
	if err := <-errs; err != context.Canceled {
		t.Errorf("load returned %v, want context.Canceled", err)
	}
}

func TestTwoLoadsOfOneStreamInAGroupGetEventsOfTheirOwn(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	appendEvents(t, pool, "s-1", 1)
	g := eventstore.NewGroupCommit(pool, time.Hour)
	loaded := make([][]eventstore.RecordedEvent, 2)
	load := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			var err error
			loaded[i], err = eventstore.Load(ctx, pool, "s-1")
			return err
		}
	}
	for name, err := range workAll(t, g, map[string]func(context.Context) error{"first": load(0), "second": load(1)}) {
		if err != nil {
			t.Errorf("%s load: %v", name, err)
		}
	}
	if stats := g.Stats(); stats.Queries != 1 || stats.Loads != 2 {
		t.Fatalf("%d queries served %d loads, want 1 for 2", stats.Queries, stats.Loads)
	}
	// What one caller does with its events, the other does not see.
	loaded[0][0].Payload[0], loaded[0][0].Metadata["changed"] = ' ', "yes"
	loaded[0] = append(loaded[0], eventstore.RecordedEvent{})
	if e := loaded[1][0]; len(loaded[1]) != 1 || e.Payload[0] != '{' || e.Metadata["changed"] != "" {
		t.Errorf("the second load sees the first one's changes: %d events, payload %s, metadata %v", len(loaded[1]), e.Payload, e.Metadata)
	}
}
