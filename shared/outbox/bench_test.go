package outbox_test

// Benchmarks of the forwarder beside a raw batch relay on the same database
// and broker, in one run, since only the ratio is meaningful on a shared
// machine. Run with:
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./shared/outbox/

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/outbox"
)

const backlog = 200_000

// BenchmarkBacklog drains a backlog of 200k events to Kafka: the forwarder
// (Watermill router, batched asynchronous sends) against a raw relay
// (keyset read of 1,000 rows, one produce call per batch, offset per batch).
func BenchmarkBacklog(b *testing.B) {
	for range b.N {
		pool, _ := testenv.Database(b, eventstore.Migrations)
		brokers := testenv.Kafka(b)
		fillBacklog(b, pool, backlog)
		var events, last int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*), max(global_position) FROM events`).Scan(&events, &last); err != nil || events != backlog {
			b.Fatalf("backlog holds %d events (%v), want %d", events, err, backlog)
		}
		// Whoever reads freshly inserted rows first sets their hint bits
		// and competes with autovacuum; settle that before either runs.
		if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE events`); err != nil {
			b.Fatal(err)
		}

		start, cpu := time.Now(), testenv.OwnCPUTime()
		stop := runForwarder(b, pool, brokers, 10*time.Millisecond, 1000)
		waitForOffset(b, pool, "forwarder", last)
		forwarder, forwarderCPU := float64(events)/time.Since(start).Seconds(), testenv.OwnCPUTime()-cpu
		stop()

		start, cpu = time.Now(), testenv.OwnCPUTime()
		stopRelay := runRawRelay(b, pool, brokers, "raw", "bench.raw", 10*time.Millisecond)
		waitForOffset(b, pool, "raw", last)
		raw, rawCPU := float64(events)/time.Since(start).Seconds(), testenv.OwnCPUTime()-cpu
		stopRelay()

		b.ReportMetric(forwarder, "events/s")
		b.ReportMetric(raw, "baseline_events/s")
		// CPU of this process (the relay, the development broker when it
		// runs in-process, the wait for the offset) per 1,000 events drained.
		b.ReportMetric(float64(forwarderCPU.Microseconds())/float64(events), "cpu_ms/1k_events")
		b.ReportMetric(float64(rawCPU.Microseconds())/float64(events), "baseline_cpu_ms/1k_events")
	}
}

// BenchmarkLatency appends events one per transaction at a steady rate and
// measures the time from commit to the record being readable from Kafka:
// the forwarder and the raw relay, each polling every 10ms.
func BenchmarkLatency(b *testing.B) {
	const rate, seconds = 2000, 5
	for range b.N {
		pool, _ := testenv.Database(b, eventstore.Migrations)
		brokers := testenv.Kafka(b)

		stop := runForwarder(b, pool, brokers, 10*time.Millisecond, 100)
		fwd := measureLatency(b, pool, brokers, "order.events", rate, seconds)
		stop()
		// The raw relay starts where the forwarder ended, on its own topic.
		_, err := pool.Exec(context.Background(), `INSERT INTO reader_positions (reader, transaction_id, global_position) SELECT 'raw', transaction_id, global_position FROM reader_positions WHERE reader = 'forwarder'`)
		if err != nil {
			b.Fatal(err)
		}
		stopRelay := runRawRelay(b, pool, brokers, "raw", "bench.raw", 10*time.Millisecond)
		raw := measureLatency(b, pool, brokers, "bench.raw", rate, seconds)
		stopRelay()

		b.ReportMetric(testenv.Percentile(fwd, 50), "p50_ms")
		b.ReportMetric(testenv.Percentile(fwd, 99), "p99_ms")
		b.ReportMetric(testenv.Percentile(raw, 50), "baseline_p50_ms")
		b.ReportMetric(testenv.Percentile(raw, 99), "baseline_p99_ms")
	}
}

// BenchmarkIdle measures what an idle forwarder costs: CPU time of this
// process and database transactions (pool acquisitions) per second, beside
// the raw relay polling every 10ms as the latency benchmark does.
func BenchmarkIdle(b *testing.B) {
	const idle = 5 * time.Second
	for range b.N {
		pool, _ := testenv.Database(b, eventstore.Migrations)
		brokers := testenv.Kafka(b)

		stop := runForwarder(b, pool, brokers, 20*time.Millisecond, 100)
		fwdCPU, fwdQueries := testenv.IdleCost(pool, idle)
		stop()
		stopRelay := runRawRelay(b, pool, brokers, "raw", "bench.raw", 10*time.Millisecond)
		rawCPU, rawQueries := testenv.IdleCost(pool, idle)
		stopRelay()

		b.ReportMetric(fwdCPU, "cpu_ms/s")
		b.ReportMetric(fwdQueries, "tx/s")
		b.ReportMetric(rawCPU, "baseline_cpu_ms/s")
		b.ReportMetric(rawQueries, "baseline_tx/s")
	}
}

func fillBacklog(b testing.TB, pool *pgxpool.Pool, n int) {
	b.Helper()
	// 1,000 transactions of 100 events, each event its own stream version.
	for tx := range n / 100 {
		_, err := pool.Exec(context.Background(), `
			INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload)
			SELECT 'order-' || ($1 * 100 + i) % 5000, ($1 * 100 + i) / 5000 + 1, gen_random_uuid(), 'order.Benchmarked', 1,
				jsonb_build_object('n', $1 * 100 + i, 'items', jsonb_build_array(jsonb_build_object('sku', 'sku-1', 'quantity', 1, 'unit_price', 100)))
			FROM generate_series(0, 99) AS i`, tx)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func runForwarder(b testing.TB, pool *pgxpool.Pool, brokers []string, poll time.Duration, batch int) (stop func()) {
	return runForwarderWith(b, outbox.ForwarderConfig{DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes, PollInterval: poll, BatchSize: batch})
}

// runForwarderWith runs a forwarder of cfg until stop is called.
func runForwarderWith(b testing.TB, cfg outbox.ForwarderConfig) (stop func()) {
	f, err := outbox.NewForwarder(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	// Also when the benchmark fails: the database's cleanup waits for the
	// forwarder's connections.
	b.Cleanup(stop)
	return stop
}

// runRawRelay is the baseline: what a hand-written relay does with the same
// table, visibility rule and offsets, sending a whole batch per produce call.
func runRawRelay(b testing.TB, pool *pgxpool.Pool, brokers []string, group, topic string, poll time.Duration) (stop func()) {
	producer, err := kafka.NewOrderedProducer(brokers, "raw-relay") // the forwarder's client, so that the designs are compared
	if err != nil {
		b.Fatal(err)
	}
	// Like the forwarder's topics, the relay's exists before it produces.
	if _, err := kadm.NewClient(producer).CreateTopic(context.Background(), 4, 1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = pool.Exec(ctx, `INSERT INTO reader_positions (reader) VALUES ($1) ON CONFLICT DO NOTHING`, group)
		for ctx.Err() == nil {
			n, err := relayBatch(ctx, pool, producer, group, topic)
			if err != nil && ctx.Err() == nil {
				b.Error(err)
				return
			}
			if n == 0 {
				time.Sleep(poll)
			}
		}
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		producer.Close()
	})
	b.Cleanup(stop)
	return stop
}

func relayBatch(ctx context.Context, pool *pgxpool.Pool, producer *kgo.Client, group, topic string) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var pos int64
		var txID string
		if err := tx.QueryRow(ctx, `SELECT global_position, transaction_id::text FROM reader_positions WHERE reader = $1 FOR UPDATE`, group).Scan(&pos, &txID); err != nil {
			return err
		}
		id, _ := strconv.ParseUint(txID, 10, 64)
		events, err := eventstore.ReadAll(ctx, tx, eventstore.Position{TransactionID: id, GlobalPosition: pos}, 1000)
		if err != nil || len(events) == 0 {
			return err
		}
		records := make([]*kgo.Record, len(events))
		for i, e := range events {
			records[i] = &kgo.Record{Topic: topic, Key: []byte(e.StreamID), Value: e.Payload, Headers: rawHeaders(e)}
		}
		if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return err
		}
		last := events[len(events)-1].Position
		n = len(events)
		_, err = tx.Exec(ctx, `UPDATE reader_positions SET global_position = $2, transaction_id = $3::text::xid8 WHERE reader = $1`,
			group, last.GlobalPosition, strconv.FormatUint(last.TransactionID, 10))
		return err
	})
	return n, err
}

// rawHeaders are the headers the forwarder gives a record (see batchEvents),
// those the services' consumers read: the raw relay puts the same records
// into Kafka, so that it does the same work.
func rawHeaders(e eventstore.RecordedEvent) []kgo.RecordHeader {
	headers := []kgo.RecordHeader{
		{Key: wkafka.UUIDHeaderKey, Value: []byte(e.ID)},
		{Key: contracts.EventIDKey, Value: []byte(e.ID)},
		{Key: contracts.EventTypeKey, Value: []byte(e.Type)},
		{Key: contracts.SchemaVersionKey, Value: strconv.AppendInt(nil, int64(e.SchemaVersion), 10)},
		{Key: contracts.StreamIDKey, Value: []byte(e.StreamID)},
		{Key: contracts.StreamVersionKey, Value: strconv.AppendInt(nil, e.StreamVersion, 10)},
		{Key: contracts.CorrelationIDKey, Value: []byte(e.CorrelationID)},
	}
	for k, v := range e.Metadata {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return headers
}

func waitForOffset(b *testing.B, pool *pgxpool.Pool, group string, want int64) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var got int64
		_ = pool.QueryRow(context.Background(), `SELECT global_position FROM reader_positions WHERE reader = $1`, group).Scan(&got)
		if got >= want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s did not reach offset %d", group, want)
}

// measureLatency appends rate events per second for seconds, one per
// transaction, and returns the commit-to-Kafka latency in ms of each event
// after the first second.
func measureLatency(b *testing.B, pool *pgxpool.Pool, brokers []string, topic string, rate, seconds int) []float64 {
	b.Helper()
	latencies, written, missing := measureLatencyOf(b, brokers, topic, rate, seconds, appendMeasured(pool, topic))
	if missing > 0 {
		b.Fatalf("wrote %d events, received %d", written, written-missing)
	}
	if written < rate*seconds {
		// The server did not commit that fast: the latency is that of a
		// lower rate.
		b.Logf("the writers committed %d of %d events in %d s", written, rate*seconds, 2*seconds)
	}
	return latencies
}

// appendMeasured appends an event to a stream of its own (prefix-ID), in a
// transaction of its own, and returns its id.
func appendMeasured(pool *pgxpool.Pool, prefix string) func(ctx context.Context, i int) (string, error) {
	return func(ctx context.Context, _ int) (string, error) {
		e := eventstore.Event{ID: uuid.NewString(), Type: "order.Measured", SchemaVersion: 1, Payload: []byte(`{}`)}
		return e.ID, eventstore.Append(ctx, pool, prefix+"-"+e.ID, 0, eventstore.Context{}, e)
	}
}

// measureLatencyOf calls write (which commits one event and returns its id)
// rate times per second for seconds, and reads topic from its end
// meanwhile. The load is open: the appends are due at fixed times, and up
// to latencyWriters of them run at once (one writer cannot commit 2,000
// transactions a second here; several share the server's WAL flushes), so
// a slow commit delays no later append. Appends not started within twice
// the time are not made. It returns the time from each commit to the
// record being readable, in ms, for the events committed after the first
// second, how many events were written, and how many of those were still
// missing from Kafka 10 s after the last commit.
func measureLatencyOf(b testing.TB, brokers []string, topic string, rate, seconds int, write func(ctx context.Context, i int) (string, error)) (latencies []float64, written, missing int) {
	b.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+60)*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(client).ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })
	client.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})

	type commit struct {
		id string
		at time.Time
	}
	var (
		mu        sync.Mutex
		committed []commit
		writers   sync.WaitGroup
	)
	total := rate * seconds
	start := time.Now()
	writing, stopWriting := context.WithTimeout(ctx, 2*time.Duration(seconds)*time.Second)
	defer stopWriting()
	due := make(chan int, total)
	go func() {
		defer close(due)
		for i := range total {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
			due <- i
		}
	}()
	for range latencyWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range due {
				if writing.Err() != nil {
					return
				}
				id, err := write(writing, i)
				if err != nil {
					if writing.Err() == nil {
						b.Error(err)
					}
					return
				}
				mu.Lock()
				committed = append(committed, commit{id, time.Now()})
				mu.Unlock()
			}
		}()
	}
	allWritten := make(chan struct{})
	go func() {
		writers.Wait()
		close(allWritten)
	}()
	received := map[string]time.Time{}
	var giveUp <-chan time.Time
	for ctx.Err() == nil {
		if giveUp != nil && everyOneIn(received, committedSoFar(&mu, &committed), func(c commit) string { return c.id }) {
			break
		}
		select {
		case <-allWritten:
			giveUp, allWritten = time.After(10*time.Second), nil
		case <-giveUp:
			cancel()
		default:
		}
		poll, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := client.PollFetches(poll)
		stop()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) { received[testenv.Header(r, "event_id")] = now })
	}
	cancel()
	writers.Wait()
	mu.Lock()
	defer mu.Unlock()
	// The first second warms up connections and topic metadata; skip it.
	for _, c := range committed {
		at, ok := received[c.id]
		if !ok {
			missing++
			continue
		}
		if c.at.Sub(start) >= time.Second {
			latencies = append(latencies, float64(at.Sub(c.at).Microseconds())/1000)
		}
	}
	return latencies, len(committed), missing
}

// everyOneIn reports whether the key of every item is in m. Counting is not
// enough: a write cancelled at the writers' deadline may still commit, and its
// record then arrives without being among the committed ones.
// latencyWriters is how many appends measureLatencyOf makes at once at
// most: as many as the peer benchmarks' writers have connections (a
// smaller pool makes the rest wait for one).
const latencyWriters = 32

func everyOneIn[T any, V any](m map[string]V, items []T, key func(T) string) bool {
	if len(m) < len(items) {
		return false
	}
	for _, it := range items {
		if _, ok := m[key(it)]; !ok {
			return false
		}
	}
	return true
}

func committedSoFar[T any](mu *sync.Mutex, committed *[]T) []T {
	mu.Lock()
	defer mu.Unlock()
	return *committed
}
