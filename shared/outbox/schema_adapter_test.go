package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// A database starts empty, autovacuum analyzes its events table while it is
// small, and a statement a connection has run a few times keeps the plan
// PostgreSQL made for the table as it was then: for a small table, reading
// all of it. The forwarder's read of the next batch must still find it by
// the commit-order index once the table has grown.
func TestTheForwardersReadFindsItsBatchByIndexAfterTheTableGrew(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if err := createGroupPosition(ctx, db, "g"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx) // one connection, whose statements PostgreSQL keeps plans for
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grow := func(from, to int) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload)
			SELECT 's-' || i, 1, gen_random_uuid(), 'test.A', 1, '{}' FROM generate_series($1::int, $2::int) AS i`, from, to); err != nil {
			t.Fatal(err)
		}
	}
	const first, events = 100, 5_000
	grow(1, first)
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		t.Fatal(err)
	}
	adapter := EventsSchemaAdapter{}
	read := adapter.SelectQuery(EventsTopic, "g", newConfirmedOffsets(&confirmedPosition{}))
	for range 10 { // more than the five runs after which PostgreSQL may keep one plan
		rows, err := conn.QueryContext(ctx, read.Query, read.Args...)
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	grow(first+1, events)
	// A transaction left open elsewhere on the server (another test's) holds
	// readers back: wait until a reader may see them all.
	testenv.Eventually(t, 30*time.Second, "every event visible to readers", func() bool {
		var hidden int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE `+eventstore.NotYetVisible).Scan(&hidden)
		return err == nil && hidden == 0
	})

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	before := testenv.RowsScanned(t, tx.QueryRowContext, "events")
	rows, err := tx.QueryContext(ctx, read.Query, read.Args...)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for rows.Next() {
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if got != adapter.batchSize() {
		t.Fatalf("read %d events, want a batch of %d", got, adapter.batchSize())
	}
	if n := testenv.RowsScanned(t, tx.QueryRowContext, "events") - before; n > 0 {
		t.Errorf("reading a batch of %d of %d events scanned the table (%d rows read one by one); want it found by the commit-order index", got, events, n)
	}
}
