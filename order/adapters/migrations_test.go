package adapters_test

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/postgres"
)

// upTo is the migration set without its files after version last: the
// schema a database of an earlier release has.
func upTo(m postgres.Migration, last int) postgres.Migration {
	files := m.Files
	m.Files = filteredFS{files, func(name string) bool {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		return err == nil && v <= last
	}}
	return m
}

type filteredFS struct {
	fs.FS
	keep func(name string) bool
}

func (f filteredFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	kept := entries[:0]
	for _, e := range entries {
		if f.keep(e.Name()) {
			kept = append(kept, e)
		}
	}
	return kept, err
}

// A database of the release with two position tables (outbox_offsets for
// the forwarder, projection_checkpoints for the projections) migrates to
// the one table of reader positions with every reader where it was: none
// starts again from the first event, none skips one.
func TestMigrationKeepsTheReadersPositions(t *testing.T) {
	pool, _ := testenv.Database(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, pool, upTo(eventstore.Migrations, 2), upTo(adapters.Migrations, 5)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e := eventstore.Event{ID: uuid.NewString(), Type: "test.Happened", SchemaVersion: 1, Payload: []byte(`{}`)}
		if err := eventstore.Append(ctx, pool, "s-"+strconv.Itoa(i), 0, eventstore.Context{}, e); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitEventsReadable(t, pool)
	events, err := eventstore.ReadAll(ctx, pool, eventstore.Start, 10)
	if err != nil || len(events) != 5 {
		t.Fatalf("read %d events (%v), want 5", len(events), err)
	}
	forwarded, projected := events[3].Position, events[1].Position
	tx := func(p eventstore.Position) string { return strconv.FormatUint(p.TransactionID, 10) }
	if _, err := pool.Exec(ctx, `INSERT INTO outbox_offsets (consumer_group, offset_acked, last_processed_transaction_id) VALUES ('forwarder', $1, $2::text::xid8)`,
		forwarded.GlobalPosition, tx(forwarded)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, transaction_id, global_position, last_error, last_error_at)
		VALUES ('order_summaries', $1::text::xid8, $2, 'disk full', now())`, tx(projected), projected.GlobalPosition); err != nil {
		t.Fatal(err)
	}

	if err := postgres.Migrate(ctx, pool, eventstore.Migrations, adapters.Migrations); err != nil {
		t.Fatal(err)
	}
	statuses, err := eventstore.ReaderStatuses(ctx, pool, "forwarder", "order_summaries")
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses[0]; s.Position != forwarded || s.LagEvents != 1 {
		t.Errorf("forwarder at %v with lag %d after the migration, want %v and 1", s.Position, s.LagEvents, forwarded)
	}
	if s := statuses[1]; s.Position != projected || s.LagEvents != 3 || s.LastError != "disk full" {
		t.Errorf("order_summaries at %v with lag %d and error %q after the migration, want %v, 3 and the error kept",
			s.Position, s.LagEvents, s.LastError, projected)
	}
	for _, table := range []string{"outbox_offsets", "projection_checkpoints"} {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || exists {
			t.Errorf("table %s still there after the migration (%v)", table, err)
		}
	}
}
