package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

func event(typ string) eventstore.Event {
	return eventstore.Event{ID: uuid.NewString(), Type: typ, SchemaVersion: 1, Payload: []byte(`{"n":1}`)}
}

func TestAppendAndLoad(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	origin := eventstore.Context{CorrelationID: "corr-1", Metadata: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}

	first, second := event("test.A"), event("test.B")
	if err := eventstore.Append(ctx, pool, "s-1", 0, origin, first, second); err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.Load(ctx, pool, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != first.ID || got[1].ID != second.ID {
		t.Fatalf("loaded %+v, want events %s then %s", got, first.ID, second.ID)
	}
	if got[0].StreamVersion != 1 || got[1].StreamVersion != 2 {
		t.Errorf("versions %d, %d; want 1, 2", got[0].StreamVersion, got[1].StreamVersion)
	}
	if got[1].CorrelationID != "corr-1" || got[1].Metadata["traceparent"] != origin.Metadata["traceparent"] {
		t.Errorf("origin not stored: %+v", got[1].Context)
	}
	if got[0].Type != "test.A" || got[0].SchemaVersion != 1 || string(got[0].Payload) != `{"n": 1}` {
		t.Errorf("event stored as %q v%d %s", got[0].Type, got[0].SchemaVersion, got[0].Payload)
	}

	if _, err := eventstore.Load(ctx, pool, "missing"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("Load(missing) = %v, want ErrStreamNotFound", err)
	}
}

func TestAppendAtStaleVersionConflictsAndWritesNothing(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	if err := eventstore.Append(ctx, pool, "s-1", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	for _, expected := range []int64{0, 2} {
		err := eventstore.Append(ctx, pool, "s-1", expected, eventstore.Context{}, event("test.B"), event("test.C"))
		if !errors.Is(err, eventstore.ErrVersionConflict) {
			t.Errorf("append at version %d: err = %v, want ErrVersionConflict", expected, err)
		}
	}
	got, _ := eventstore.Load(ctx, pool, "s-1")
	if len(got) != 1 {
		t.Errorf("stream has %d events after conflicts, want 1", len(got))
	}
}

// Two transactions append at the same version at the same time: the unique
// constraint lets exactly one win, and the other gets a conflict.
func TestConcurrentAppendsOneWins(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	txA, _ := pool.Begin(ctx)
	txB, _ := pool.Begin(ctx)
	defer txA.Rollback(ctx)
	defer txB.Rollback(ctx)
	if err := eventstore.Append(ctx, txA, "s-1", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	errB := make(chan error, 1)
	go func() { errB <- eventstore.Append(ctx, txB, "s-1", 0, eventstore.Context{}, event("test.B")) }()
	// B passed the version check (A is not committed) and now waits on the
	// unique index for A's row.
	testenv.Eventually(t, 30*time.Second, "the second append waiting on the first one's row", func() bool {
		var waiting int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return waiting == 1
	})
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errB; !errors.Is(err, eventstore.ErrVersionConflict) || !strings.Contains(err.Error(), "concurrently") {
		t.Fatalf("second append: %v, want the unique constraint's ErrVersionConflict", err)
	}
}

// An event whose transaction started (and took its position) first but
// commits last must still be read: it is invisible while its transaction is
// open, and everything after it waits.
func TestReadAllNeverSkipsLateCommits(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	lateEvent := event("test.Late")
	if err := eventstore.Append(ctx, slow, "slow", 0, eventstore.Context{}, lateEvent); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := eventstore.Append(ctx, pool, fmt.Sprint("fast-", i), 0, eventstore.Context{}, event("test.Fast")); err != nil {
			t.Fatal(err)
		}
	}

	if got, _ := eventstore.ReadAll(ctx, pool, eventstore.Start, 100); len(got) != 0 {
		t.Fatalf("read %d events while an older transaction is open, want 0 (they would overtake it)", len(got))
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Visibility follows the oldest transaction open anywhere on the server
	// (tests of other packages run meanwhile), so read until all are seen.
	var all []eventstore.RecordedEvent
	pos := eventstore.Start
	testenv.Eventually(t, 30*time.Second, "all four events readable", func() bool {
		batch, err := eventstore.ReadAll(ctx, pool, pos, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) > 0 {
			all = append(all, batch...)
			pos = batch[len(batch)-1].Position
		}
		return len(all) >= 4
	})
	if len(all) != 4 {
		t.Fatalf("read %d events, want 4", len(all))
	}
	found := false
	for _, e := range all {
		found = found || e.ID == lateEvent.ID
	}
	if !found {
		t.Fatal("the late-committed event was skipped")
	}
}

func TestAppendIsAtomicWithTheCallersTransaction(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := eventstore.Append(ctx, tx, "s-1", 0, eventstore.Context{}, event("test.A")); err != nil {
			return err
		}
		return errors.New("the command failed after appending")
	})
	if err == nil {
		t.Fatal("expected the transaction to fail")
	}
	if _, err := eventstore.Load(ctx, pool, "s-1"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("event survived a rolled-back transaction: %v", err)
	}
}

// Transaction ids are ordered as numbers, not as text ("10" before "9"):
// otherwise a batch ends past an event that then never comes.
func TestReadAllOrdersTransactionIDsAsNumbers(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	// Ids far below any live transaction's, so both rows are readable.
	for _, txID := range []string{"10", "9"} {
		_, err := pool.Exec(ctx, `INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, schema_version, payload)
			VALUES ($1::xid8, $2, 1, $3, 'test.A', 1, '{}')`, txID, "tx-"+txID, uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
	}
	var read []string
	pos := eventstore.Start
	for range 3 {
		batch, err := eventstore.ReadAll(ctx, pool, pos, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			read = append(read, e.StreamID)
			pos = e.Position
		}
	}
	if fmt.Sprint(read) != "[tx-9 tx-10]" {
		t.Fatalf("read %v one at a time, want [tx-9 tx-10]", read)
	}
}

// An append on a pool is one statement with no transaction around it: it
// stores all of its events or none, even when a later row fails.
func TestAppendOnAPoolIsAllOrNothing(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	stored := event("test.A")
	if err := eventstore.Append(ctx, pool, "s-1", 0, eventstore.Context{}, stored); err != nil {
		t.Fatal(err)
	}
	// The second row reuses an event id: the unique index refuses it.
	if err := eventstore.Append(ctx, pool, "s-2", 0, eventstore.Context{}, event("test.B"), stored); err == nil {
		t.Fatal("an append reusing an event id succeeded")
	}
	if _, err := eventstore.Load(ctx, pool, "s-2"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("after the failed append, Load(s-2) = %v, want ErrStreamNotFound: its first event was kept", err)
	}
}

// An append notifies NotifyChannel when it commits, unless another append
// that notifies is still in progress (see migrations/00004): then it
// commits without a notification, and the other's wakes the readers.
func TestAppendsNotifyOneAtATime(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, "LISTEN "+eventstore.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		n, err := listener.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n.Payload
	}
	// A marker between two commits: PostgreSQL delivers notifications in
	// commit order, so what arrives before it was notified before it.
	marker := func(payload string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, eventstore.NotifyChannel, payload); err != nil {
			t.Fatal(err)
		}
	}

	if err := eventstore.Append(ctx, pool, "alone", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	marker("after alone")
	if got := next(); got != "" {
		t.Fatalf("first notification %q, want the lone append's", got)
	}
	if got := next(); got != "after alone" {
		t.Fatalf("then %q, want the marker", got)
	}

	held, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(context.Background())
	if err := eventstore.Append(ctx, held, "held", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	if err := eventstore.Append(ctx, pool, "beside", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	marker("after beside")
	if err := held.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "after beside" {
		t.Fatalf("first notification %q, want the marker: the append beside the held one notified", got)
	}
	if got := next(); got != "" {
		t.Fatalf("then %q, want the held append's notification at its commit", got)
	}
}

// A group commit or a projector loads the streams of a whole batch at once,
// thousands of them when it catches up with a backlog. Asked for that many
// with stream_id = ANY, PostgreSQL chose to read the whole table, in
// parallel (at 1,500 streams of 180,000 events: 40 ms against 13 through
// the index, and more as the table grows): the slower it catches up, the
// larger the next batch. LoadStreams must find each stream by its index
// however many it asks for, each stream's events in version order.
func TestLoadStreamsOfABacklogsBatchReadsOnlyItsStreams(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	const streams, versions, asked = 20_000, 3, 2_000
	if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload)
		SELECT 's-' || i, v, gen_random_uuid(), 'test.A', 1, '{}' FROM generate_series(1, $1) AS i, generate_series(1, $2) AS v`,
		streams, versions); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, asked)
	for i := range ids {
		ids[i] = fmt.Sprintf("s-%d", 1+i*streams/asked)
	}
	ids = append(ids, ids[0]) // two loads of one stream in a group commit's batch

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Parallel workers report what they read when they end, to the
	// server's statistics: read those as they are now, not as the
	// transaction first saw them.
	if _, err := tx.Exec(ctx, `SET LOCAL stats_fetch_consistency = none`); err != nil {
		t.Fatal(err)
	}
	before := testenv.RowsScanned(t, tx.QueryRow, "events")
	got, err := eventstore.LoadStreams(ctx, tx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if n := testenv.RowsScanned(t, tx.QueryRow, "events") - before; n > 0 {
		t.Errorf("loading %d streams of %d scanned the table (%d rows read one by one); want them found by their index", asked, streams, n)
	}
	if len(got) != asked {
		t.Fatalf("loaded %d streams, want %d", len(got), asked)
	}
	for _, id := range ids {
		events := got[id]
		if len(events) != versions {
			t.Fatalf("stream %s: %d events, want %d", id, len(events), versions)
		}
		for i, e := range events {
			if e.StreamVersion != int64(i+1) {
				t.Fatalf("stream %s: event %d has version %d, want the stream in version order", id, i, e.StreamVersion)
			}
		}
	}
}

// A database starts empty, and a statement a connection has run a few times
// keeps the plan PostgreSQL made for the table as it was then: for a tiny
// table, reading all of it. LoadStreams must still read only the streams
// it asks for once the table has grown.
func TestLoadStreamsReadsOnlyItsStreamsAfterTheTableGrew(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if err := eventstore.Append(ctx, pool, "s-0", 0, eventstore.Context{}, event("test.A")); err != nil {
		t.Fatal(err)
	}
	for range 10 { // more than the five runs after which PostgreSQL may keep one plan
		if _, err := eventstore.LoadStreams(ctx, conn, []string{"s-0", "s-1"}); err != nil {
			t.Fatal(err)
		}
	}
	const streams = 5_000
	if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload)
		SELECT 's-' || i, 1, gen_random_uuid(), 'test.A', 1, '{}' FROM generate_series(1, $1) AS i`, streams); err != nil {
		t.Fatal(err)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	before := testenv.RowsScanned(t, tx.QueryRow, "events")
	got, err := eventstore.LoadStreams(ctx, tx, []string{"s-7", "s-4000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got["s-7"]) != 1 || len(got["s-4000"]) != 1 {
		t.Fatalf("loaded %v, want one event of s-7 and one of s-4000", got)
	}
	if n := testenv.RowsScanned(t, tx.QueryRow, "events") - before; n > 0 {
		t.Errorf("loading 2 streams of %d scanned the table (%d rows read one by one); want them found by their index", streams+1, n)
	}
}
