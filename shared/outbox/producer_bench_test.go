package outbox_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/outbox"
)

// producerSettings are the forwarder's producer settings compared: the
// production one (the producer holds a batch until the forwarder flushes
// it, so it goes as one request per broker) and the one it replaced (each
// record sent as it is handed over, in up to five requests in flight per
// broker). An earlier comparison here, Kafka's idempotent producer against
// one request in flight without idempotence, is in docs/benchmarks.md.
var producerSettings = []struct {
	name string
	opts []kgo.Opt
}{
	{"batch_per_request", nil},
	// Any option replaces the sender's own; linger 0 is already
	// kafka.NewOrderedProducer's, so this is that producer as it is.
	{"as_handed_over", []kgo.Opt{kgo.ProducerLinger(0)}},
}

// BenchmarkProducerSettings measures both producer settings side by side
// on the same database and Kafka (the 3-node cluster under `task
// test-kafka`'s TEST_KAFKA_CLUSTER): the drain of a 200k-event backlog and
// the commit-to-Kafka latency at 2,000 events/s (BENCH_LATENCY_RATE).
//
//	TEST_KAFKA_CLUSTER=$PWD/.kafka go test -run '^$' -bench ProducerSettings -benchtime 1x -count 3 ./shared/outbox/
func BenchmarkProducerSettings(b *testing.B) {
	for range b.N {
		pool, _ := testenv.Database(b, eventstore.Migrations)
		brokers := testenv.Kafka(b)
		from := "" // the group whose offset the next forwarder starts from
		for _, s := range producerSettings {
			group := "latency_" + s.name
			startFrom(b, pool, group, from)
			restore := outbox.SetProducerOptions(s.opts...)
			stop := runForwarderWith(b, outbox.ForwarderConfig{DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes,
				ConsumerGroup: group, PollInterval: 10 * time.Millisecond, BatchSize: 100})
			lat := measureLatency(b, pool, brokers, "order.events", latencyRate(), 5)
			stop()
			restore()
			b.ReportMetric(testenv.Percentile(lat, 50), s.name+"_p50_ms")
			b.ReportMetric(testenv.Percentile(lat, 99), s.name+"_p99_ms")
			from = group
		}

		fillBacklog(b, pool, backlog)
		if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE events`); err != nil {
			b.Fatal(err)
		}
		var last int64
		if err := pool.QueryRow(context.Background(), `SELECT max(global_position) FROM events`).Scan(&last); err != nil {
			b.Fatal(err)
		}
		for _, s := range producerSettings {
			group := "drain_" + s.name
			startFrom(b, pool, group, from)
			restore := outbox.SetProducerOptions(s.opts...)
			start := time.Now()
			stop := runForwarderWith(b, outbox.ForwarderConfig{DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes,
				ConsumerGroup: group, PollInterval: 10 * time.Millisecond, BatchSize: 1000})
			waitForOffset(b, pool, group, last)
			b.ReportMetric(backlog/time.Since(start).Seconds(), s.name+"_events/s")
			stop()
			restore()
		}
	}
}

// latencyRate is BENCH_LATENCY_RATE events/s, 2,000 by default: a machine
// whose PostgreSQL cannot append that many in one stream of transactions
// measures at a rate it can.
func latencyRate() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_LATENCY_RATE")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// startFrom makes group's forwarder start where group from stopped ("":
// at the first event).
func startFrom(b *testing.B, pool *pgxpool.Pool, group, from string) {
	if from == "" {
		return
	}
	if _, err := pool.Exec(context.Background(), `INSERT INTO reader_positions (reader, transaction_id, global_position)
		SELECT $1, transaction_id, global_position FROM reader_positions WHERE reader = $2`, group, from); err != nil {
		b.Fatal(err)
	}
}
