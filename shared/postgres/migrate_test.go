package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/postgres"
)

// A file in goose's format: statements end with a line ending in ";", a
// StatementBegin block is one statement, Down is not run.
const notifyMigration = `-- A comment before the annotation.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION notify_t() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('t', ''); -- a semicolon inside the block
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER notify_t AFTER INSERT ON t
    FOR EACH STATEMENT EXECUTE FUNCTION notify_t(); -- trailing comment

-- +goose Down
DROP TRIGGER notify_t ON t;
DROP FUNCTION notify_t();
`

func TestMigrateAppliesEachVersionOnceAndRefusesOutOfOrderFiles(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	files := fstest.MapFS{
		"00001_t.sql":      {Data: []byte("-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n")},
		"00003_notify.sql": {Data: []byte(notifyMigration)},
	}
	set := postgres.Migration{Files: files, VersionTable: "test_schema_version"}
	if err := postgres.Pending(ctx, pool, set); err == nil {
		t.Fatal("Pending before any migration: no error")
	}
	for range 2 { // the second run finds nothing to do
		if err := postgres.Migrate(ctx, pool, set); err != nil {
			t.Fatal(err)
		}
	}
	if err := postgres.Pending(ctx, pool, set); err != nil {
		t.Fatalf("Pending after Migrate: %v", err)
	}
	var versions []int64
	rows, _ := pool.Query(ctx, "SELECT version_id FROM test_schema_version WHERE is_applied ORDER BY id")
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, []int64{0, 1, 3}) {
		t.Errorf("recorded versions %v, want [0 1 3] (goose's table, with its version 0)", versions)
	}
	var trigger bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'notify_t')").Scan(&trigger); err != nil || !trigger {
		t.Errorf("the trigger of the StatementBegin block is missing (err %v)", err)
	}

	// A file older than the newest applied one was never applied: refused, not run late.
	files["00002_late.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE late (id int);\n")}
	if err := postgres.Migrate(ctx, pool, set); err == nil || !strings.Contains(err.Error(), "out-of-order") {
		t.Errorf("Migrate with an out-of-order file: %v, want an out-of-order error", err)
	}
	delete(files, "00002_late.sql")

	// A statement that fails rolls its whole file back.
	files["00004_bad.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE bad (id int);\nSELECT no_such_function();\n")}
	if err := postgres.Migrate(ctx, pool, set); err == nil {
		t.Error("Migrate with a failing statement: no error")
	}
	var bad bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('bad') IS NOT NULL").Scan(&bad); err != nil || bad {
		t.Errorf("table bad exists after its migration failed (err %v)", err)
	}
	if err := postgres.Pending(ctx, pool, set); err == nil {
		t.Error("Pending with 00004 not applied: no error")
	}
}

func TestMigrateRefusesMalformedFiles(t *testing.T) {
	pool, _ := testenv.Database(t)
	for name, src := range map[string]string{
		"00001_no_up.sql":          "CREATE TABLE t (id int);\n",
		"00001_no_semicolon.sql":   "-- +goose Up\nCREATE TABLE t (id int)\n",
		"00001_open_block.sql":     "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
		"name_without_version.sql": "-- +goose Up\nSELECT 1;\n",
	} {
		set := postgres.Migration{Files: fstest.MapFS{name: {Data: []byte(src)}}, VersionTable: "test_schema_version"}
		if err := postgres.Migrate(context.Background(), pool, set); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A service's pool opens up to DefaultMaxConns connections, or what the URL
// says; a test's pool (Connect) keeps pgxpool's default.
func TestOpenSizesTheServicePool(t *testing.T) {
	_, url := testenv.Database(t)
	ctx := context.Background()
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, c := range []struct {
		url  string
		want int32
	}{{url, postgres.DefaultMaxConns}, {url + sep + "pool_max_conns=3", 3}} {
		pool, err := postgres.Open(ctx, c.url, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != c.want {
			t.Errorf("Open(%s): MaxConns %d, want %d", c.url, got, c.want)
		}
		pool.Close()
	}
}
