// Package postgres connects to PostgreSQL and applies versioned migrations
// (SQL files in goose's format, recorded in goose's version tables).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the most connections a service's pool (Open) opens
// unless its URL sets pool_max_conns. pgxpool's own default, the number of
// cores but at least 4, is 4 on 2 cores, and a service needs more at once:
// one held for LISTEN and one for each forwarder read, one for each
// consumer partition in flight (four on the project's topics), besides the
// HTTP requests. With 4, the order service's consumer of payment outcomes
// waited for a connection behind the requests and was the pipeline's
// bottleneck (docs/benchmarks.md, issue 16). The pool opens connections
// only as they are needed.
const DefaultMaxConns = 16

// PlanEveryRun, given as a query's first argument, has pgx run the query
// without a prepared statement (pgx.QueryExecModeCacheDescribe), through
// database/sql too, so that PostgreSQL plans it for each run. A prepared
// statement keeps, after five runs, the plan made for the table as it was
// then, until the table is next analyzed (autovacuum: a minute at the
// soonest): on a new database, a plan made while a table was small reads
// all of it. The reads whose plan depends on a table's size take it: the
// event store's reads in commit order and of several streams at once, and
// the simulated gateway's ledger. Seen at 800 orders/s on new databases:
// each load of a group's streams, and some of the forwarders' reads,
// scanned all of the 50,000 events, 10 to 20 ms each and most of
// PostgreSQL's time (docs/benchmarks.md, issue 16). The cost is planning
// each run, a fraction of a millisecond, for reads that come once per
// batch. Reads of one key by its index need not: their plan is the same at
// any size.
const PlanEveryRun = pgx.QueryExecModeCacheDescribe

// Connect opens a connection pool and checks that the server answers.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return connect(ctx, url, 0)
}

// connect is Connect with at most maxConns connections unless url sets
// pool_max_conns (0: pgxpool's default).
func connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse %q: %w", redact(url), err)
	}
	if maxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", redact(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", redact(url), err)
	}
	return pool, nil
}

// CreateDatabase creates the database named in url if it does not exist yet,
// connecting to the server's "postgres" database to do so.
func CreateDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: parse %q: %w", redact(url), err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", redact(url), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // already exists (23505: a concurrent CREATE won the race)
	}
	if err != nil {
		return fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops the database named in url, disconnecting its sessions.
func DropDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// Migration is one set of versioned SQL migrations with its own version table,
// so that the shared event store and each service evolve their schemas apart.
type Migration struct {
	// Files holds SQL files in goose's format (00001_name.sql, ...) at its root.
	Files fs.FS
	// VersionTable records which of Files have been applied.
	VersionTable string
}

// NewMigration returns the migration set in directory dir of files (an
// embedded FS), recorded in versionTable.
func NewMigration(files fs.FS, dir, versionTable string) Migration {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(fmt.Sprintf("postgres: migrations in %s: %v", dir, err))
	}
	return Migration{Files: sub, VersionTable: versionTable}
}

// Migrate applies every pending migration of each set, in order. A PostgreSQL
// advisory lock makes concurrent starts of several replicas safe.
func Migrate(ctx context.Context, pool *pgxpool.Pool, sets ...Migration) error {
	return migrate(ctx, pool, sets)
}

// redact hides a password in a connection URL for error messages.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// WithDatabase returns the connection URL with its database name replaced.
func WithDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("postgres: %q is not a postgres:// URL", redact(rawURL))
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Open connects to the database at url with a service's pool (at most
// DefaultMaxConns connections unless url sets pool_max_conns) and applies
// pending migrations. With create, it first creates the database if it
// does not exist.
func Open(ctx context.Context, url string, create bool, migrations ...Migration) (*pgxpool.Pool, error) {
	if create {
		if err := CreateDatabase(ctx, url); err != nil {
			return nil, err
		}
	}
	pool, err := connect(ctx, url, DefaultMaxConns)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, pool, migrations...); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Pending returns an error if any migration of the sets is not applied yet.
func Pending(ctx context.Context, pool *pgxpool.Pool, sets ...Migration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for _, set := range sets {
		left, err := pending(ctx, conn.Conn(), set)
		if err != nil {
			return fmt.Errorf("migrations %s: %w", set.VersionTable, err)
		}
		if left {
			return fmt.Errorf("migrations %s are not all applied; run migrate", set.VersionTable)
		}
	}
	return nil
}

// Setup creates the database at url if it is missing and applies the
// migrations: the `migrate` command of every service.
func Setup(ctx context.Context, url string, migrations ...Migration) error {
	pool, err := Open(ctx, url, true, migrations...)
	if err == nil {
		pool.Close()
	}
	return err
}
