// Package testenv gives tests the real components: a fresh PostgreSQL
// database and a Kafka broker (the in-process development broker, or the
// real Apache Kafka cluster that TEST_KAFKA_CLUSTER names).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/postgres"
)

// DefaultDatabaseURL is the local server of a development machine.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL is the PostgreSQL server tests use: TEST_DATABASE_URL, else
// DATABASE_URL, else the local default.
func ServerURL() string {
	return firstNonEmpty(os.Getenv("TEST_DATABASE_URL"), os.Getenv("DATABASE_URL"), DefaultDatabaseURL)
}

// Database creates an empty database for the test on the ServerURL server,
// applies the migrations, and drops it when the test ends.
func Database(t testing.TB, migrations ...postgres.Migration) (pool *pgxpool.Pool, url string) {
	t.Helper()
	base := ServerURL()
	name := "test_" + randomHex(6)
	url, err := postgres.WithDatabase(base, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.CreateDatabase(ctx, url); err != nil {
		t.Fatalf("testenv: %v (is PostgreSQL running? scripts/setup.sh starts it)", err)
	}
	pool, err = postgres.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.DropDatabase(ctx, url); err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
		}
	})
	if err := postgres.Migrate(ctx, pool, migrations...); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return pool, url
}

// Kafka returns brokers for the test: a new in-process development broker
// on a free loopback port with the project's topics, closed when the test
// ends; or, when TEST_KAFKA_CLUSTER names the directory of a cluster that
// kafkacluster started (`task test-kafka`), that real Apache Kafka
// cluster with the project's topics deleted and created anew, held for this
// test alone until it ends (see KafkaCluster).
//
// The development broker's topics have 4 partitions, or as many as
// TEST_KAFKA_PARTITIONS says: the benchmarks measure with more, so that each
// of several replicas of a consumer keeps as many partitions as one alone.
func Kafka(t testing.TB) []string {
	t.Helper()
	if os.Getenv("TEST_KAFKA_CLUSTER") != "" {
		return KafkaCluster(t).Brokers()
	}
	partitions := int32(4)
	if v := os.Getenv("TEST_KAFKA_PARTITIONS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			t.Fatalf("testenv: TEST_KAFKA_PARTITIONS=%q: want a number of partitions, 1 or more", v)
		}
		partitions = int32(n)
	}
	broker, err := devkafka.Start(devkafka.Config{Partitions: partitions, Topics: devkafka.Topics})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(broker.Close)
	return []string{broker.Addr()}
}

// RowsScanned returns how many rows of table have been read one by one, in
// scans of the whole table rather than through an index: those the server's
// statistics hold, plus those the connection that queryRow runs on has read
// and not reported yet. Give it a transaction's QueryRow (pgx) or
// QueryRowContext (database/sql) and take the difference of two calls: the
// server's part stays as the transaction first saw it, so the difference is
// what that transaction read in between. Or give it a pool's, once the
// connections that read have closed.
func RowsScanned[R interface{ Scan(...any) error }](t testing.TB, queryRow func(context.Context, string, ...any) R, table string) int64 {
	t.Helper()
	var n int64
	if err := queryRow(context.Background(), `SELECT s.seq_tup_read + x.seq_tup_read
		FROM pg_stat_user_tables s JOIN pg_stat_xact_user_tables x USING (relid) WHERE s.relname = $1`, table).Scan(&n); err != nil {
		t.Fatalf("testenv: rows scanned in %s: %v", table, err)
	}
	return n
}

// OneConnection opens a pool of one connection to url, named name in
// pg_stat_activity: a connection whose statements PostgreSQL keeps plans
// for, as a service's do. Close it, then wait with Closed, before counting
// what it read with RowsScanned.
func OneConnection(t testing.TB, url, name string) *pgxpool.Pool {
	t.Helper()
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	config.MaxConns = 1
	config.ConnConfig.RuntimeParams["application_name"] = name
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Closed waits until no connection named name is open on pool's server: a
// closed connection's counts reach the server's statistics by the time it
// has gone from pg_stat_activity.
func Closed(t testing.TB, pool *pgxpool.Pool, name string) {
	t.Helper()
	Eventually(t, 30*time.Second, "the connections named "+name+" closed", func() bool {
		var open int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&open)
		return err == nil && open == 0
	})
}

// Go runs run in a goroutine until stop is called, or the test ends: then
// it cancels run's context, waits for it to return and fails the test if it
// returned an error, naming it what.
func Go(t testing.TB, what string, run func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
	t.Cleanup(stop)
	return stop
}

// Eventually calls check until it returns true or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
