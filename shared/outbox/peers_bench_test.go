package outbox_test

// The peer benchmarks: this project's forwarder beside Debezium's outbox
// event router (Kafka Connect standalone), Watermill's stock forwarder
// component and the raw relay, moving the same events to the same topic
// with the same keys, on one PostgreSQL server (wal_level=logical, for
// Debezium) and one real Kafka cluster, in one run. Every relay runs in a
// process of its own (the Go ones in this test binary started again, see
// TestPeerRelayProcess), so that its CPU time and memory are its own. Run
// with `task bench-peers`, which starts that server and cluster and
// prints the table (shared/devtools/cmd/benchtable --peers).

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
	"github.com/es-outbox/reference/shared/devtools/kafkaconnect"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/postgres"
)

// The relays, in the table's column order.
const (
	relayForwarder = "forwarder"
	relayDebezium  = "debezium"
	relayWatermill = "watermill"
	relayRaw       = "raw"
	// relayForwarder100 is the forwarder reading 100 events per query
	// (FORWARDER_BATCH_SIZE=100, the default until 2026-12-01), in the
	// drain of 200k only: what the batch size does to a drain.
	relayForwarder100 = "forwarder100"
	// relayKafka is no relay: records produced straight to the topic, the
	// latency every relay adds to.
	relayKafka = "kafka"
)

var peerRelays = []string{relayForwarder, relayDebezium, relayWatermill, relayRaw}

// peerTopic is where every relay sends the events: the forwarder's route for
// order.* (Debezium's router and Watermill's envelopes name it too).
const peerTopic = "order.events"

// watermillTopic is the Watermill SQL topic its stock path reads: the table
// watermill_events in watermill-sql's default PostgreSQL schema.
const watermillTopic = "events"

// BenchmarkPeers measures, per run and for each relay: the drain of a 200k
// backlog (and of 1M for the two fastest), CPU per 1,000 events and peak
// RSS while draining, the idle cost, commit-to-Kafka latency at a
// steady 2,000 and 10,000 events/s, and what a write transaction held open
// in another database of the server does to events committed meanwhile.
func BenchmarkPeers(b *testing.B) {
	if os.Getenv("BENCH_PEERS") == "" {
		b.Skip("the peer benchmarks need their own PostgreSQL server and Kafka cluster: run task bench-peers")
	}
	cluster := testenv.KafkaCluster(b)
	printEnvironment.Do(func() { printPeersEnvironment(b, len(cluster.Nodes)) })
	warmUp.Do(func() { warmUpCluster(b, cluster) })
	relays := append(slices.Clone(peerRelays), relayForwarder100)
	if v := os.Getenv("BENCH_PEERS_DRAIN_ONLY"); v != "" {
		relays = strings.Split(v, ",") // a profile of some relays' drain
	}
	for range b.N {
		m := metrics{}
		if v := os.Getenv("BENCH_PEERS_LATENCY_ONLY"); v != "" {
			// The latency phases of some relays (kafka: Kafka alone).
			for _, relay := range strings.Split(v, ",") {
				if relay == relayKafka {
					kafkaAlonePhase(b, cluster, m)
				} else {
					latencyPhase(b, cluster, relay, m)
				}
			}
			m.report(b)
			continue
		}
		drain := drainPhase(b, cluster, peerBacklog(b), relays, m, true)
		if len(relays) != len(peerRelays)+1 {
			m.report(b)
			continue
		}
		delete(drain, relayForwarder100)
		// The two fastest of this run drain 1M as well.
		fastest := slices.Clone(peerRelays)
		slices.SortFunc(fastest, func(x, y string) int { return int(drain[y] - drain[x]) })
		if os.Getenv("BENCH_PEERS_1M") != "0" {
			drainPhase(b, cluster, 1_000_000, fastest[:2], m, false)
		}
		for _, relay := range peerRelays {
			latencyPhase(b, cluster, relay, m)
		}
		kafkaAlonePhase(b, cluster, m)
		m.report(b)
	}
}

// peerBacklog is the backlog of the drain: 200k, or BENCH_PEERS_BACKLOG
// events (a quick trial of the harness).
func peerBacklog(b *testing.B) int {
	if v := os.Getenv("BENCH_PEERS_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n%100 != 0 {
			b.Fatalf("BENCH_PEERS_BACKLOG=%s: a multiple of 100", v)
		}
		return n
	}
	return backlog
}

// metrics are one run's figures, per relay and metric.
type metrics map[string]float64

func (m metrics) set(relay, unit string, v float64) { m[relay+"."+unit] = v }

func (m metrics) report(b *testing.B) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.ReportMetric(m[k], k)
	}
}

// drainPhase fills one database with n events (one backlog every relay
// reads: the forwarder and the raw relay by their offsets, Debezium from a
// slot created before the backlog, Watermill's path from its own table of
// the same events) and lets each relay drain it in turn, and returns each
// one's events/s.
func drainPhase(b *testing.B, cluster *kafkacluster.Cluster, n int, relays []string, m metrics, costs bool) map[string]float64 {
	pool, url := testenv.Database(b, eventstore.Migrations)
	ctx := context.Background()
	if slices.Contains(relays, relayWatermill) {
		fillWatermill(b, pool, n)
	}
	if slices.Contains(relays, relayDebezium) {
		createSlot(b, pool, url)
	}
	fillBacklog(b, pool, n)
	// The fill's pages are vacuumed and written out before anything is
	// timed, so that no checkpoint of them falls in the first relay's drain.
	for _, sql := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	rates := map[string]float64{}
	suffix := fmt.Sprintf("drain_%s_events/s", count(n))
	for _, relay := range relays {
		resetTopic(b, cluster)
		adm := admin(b, cluster)
		base := endOffsets(b, adm)
		r := startRelay(b, relay, pool, url, cluster.Brokers())
		cpu0 := r.cpu(b)
		rate, relayed := waitDrained(b, adm, base, int64(n), r)
		cpu1 := r.cpu(b)
		rates[relay] = rate
		m.set(relay, suffix, rate)
		if relayed < int64(n) {
			m.set(relay, "drain_"+count(n)+"_cut_off_after_events", float64(relayed))
		}
		if costs {
			m.set(relay, "drain_cpu_ms/1k_events", float64((cpu1-cpu0).Microseconds())/float64(relayed))
			m.set(relay, "peak_rss_MiB", r.peakRSS(b))
		}
		r.stop(b)
	}
	return rates
}

// latencyPhase runs relay on a fresh database and measures commit-to-Kafka
// latency at 2,000 and 10,000 events/s, then the held transaction.
func latencyPhase(b *testing.B, cluster *kafkacluster.Cluster, relay string, m metrics) {
	pool, url := testenv.Database(b, eventstore.Migrations)
	if relay == relayDebezium {
		createSlot(b, pool, url)
	}
	resetTopic(b, cluster)
	r := startRelay(b, relay, pool, url, cluster.Brokers())
	defer r.stop(b)
	// The writers' own pool: up to 32 transactions at once.
	writers, err := postgres.Connect(context.Background(), url+"&pool_max_conns=32")
	if err != nil {
		b.Fatal(err)
	}
	defer writers.Close()
	write := appender(b, relay, writers)
	brokers := cluster.Brokers()
	// Whatever the relay still has to do at start (its first reads, the
	// connector's first poll) ends before the measurement.
	if _, _, missing := measureLatencyOf(b, brokers, peerTopic, 100, 1, write); missing > 0 {
		b.Fatalf("%s: %d of 100 events never reached Kafka", relay, missing)
	}
	// Idle now: it has relayed everything, and has warmed up.
	cpuPerSecond, txPerSecond := idleCosts(b, r, url)
	m.set(relay, "idle_cpu_ms/s", cpuPerSecond)
	m.set(relay, "idle_tx/s", txPerSecond)
	// A write transaction held open for 3 s in another database of the
	// server while events are appended at 200/s for 6 s: how late are
	// they, and does any never arrive?
	hold := holdTransaction(b, 1*time.Second, 3*time.Second)
	latencies, _, missing := measureLatencyOf(b, brokers, peerTopic, 200, 6, write)
	hold()
	m.set(relay, "held_tx_max_ms", slices.Max(append(latencies, 0)))
	m.set(relay, "held_tx_missing_events", float64(missing))
	latencyAtRates(b, brokers, relay, write, m)
}

// latencyAtRates measures the latency of what write appends at 2,000 and
// then 10,000 events/s, and what rate the writers achieved, unless relay
// falls behind at the first.
func latencyAtRates(b *testing.B, brokers []string, relay string, write func(ctx context.Context, i int) (string, error), m metrics) {
	for _, rate := range []int{2000, 10000} {
		name := fmt.Sprintf("%dk", rate/1000)
		start := time.Now()
		latencies, written, missing := measureLatencyOf(b, brokers, peerTopic, rate, 5, write)
		m.set(relay, "append_rate_"+name+"_events/s", float64(written)/time.Since(start).Seconds())
		if missing > 0 {
			// It fell behind: no percentiles of the events it did relay,
			// and no higher rate.
			m.set(relay, "behind_"+name+"_events", float64(missing))
			return
		}
		if len(latencies) == 0 { // the writers committed nothing after the first second
			b.Logf("%s at %d events/s: no event committed after the first second (%d written)", relay, rate, written)
			return
		}
		m.set(relay, "p50_"+name+"_ms", testenv.Percentile(latencies, 50))
		m.set(relay, "p99_"+name+"_ms", testenv.Percentile(latencies, 99))
		m.set(relay, "max_"+name+"_ms", slices.Max(latencies))
	}
}

// kafkaAlonePhase measures the floor of every relay's commit-to-Kafka
// latency: records produced straight to the topic at the same rates, by the
// forwarder's producer (kafka.NewOrderedProducer: acks from all in-sync
// replicas), with no database and no relay, from the produce call to the
// record being readable.
func kafkaAlonePhase(b *testing.B, cluster *kafkacluster.Cluster, m metrics) {
	resetTopic(b, cluster)
	producer, err := kafka.NewOrderedProducer(cluster.Brokers(), "kafka-alone")
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	produce := func(ctx context.Context, _ int) (string, error) {
		id := uuid.NewString()
		producer.Produce(ctx, &kgo.Record{Topic: peerTopic, Key: []byte("measured-" + id), Value: []byte(`{}`),
			Headers: []kgo.RecordHeader{{Key: "event_id", Value: []byte(id)}}}, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				b.Error(err)
			}
		})
		return id, nil
	}
	// What a relay's phase does on its new topic before the rates: a second
	// at 100/s, 6 s at 200/s.
	measureLatencyOf(b, cluster.Brokers(), peerTopic, 100, 1, produce)
	measureLatencyOf(b, cluster.Brokers(), peerTopic, 200, 6, produce)
	latencyAtRates(b, cluster.Brokers(), relayKafka, produce, m)
}

// relayProcess is a running relay: its process, for CPU and memory, and
// how to stop it.
type relayProcess struct {
	name string
	pid  int
	stop func(testing.TB)
	// failed reports whether it has failed (Debezium's task), nil if not.
	failed func() error
}

func (r relayProcess) cpu(b testing.TB) time.Duration {
	d, err := testenv.CPUTime(r.pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func (r relayProcess) peakRSS(b testing.TB) float64 {
	v, err := testenv.PeakRSS(r.pid)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// startRelay starts relay on the database at url and returns once it runs.
func startRelay(b *testing.B, relay string, pool *pgxpool.Pool, url string, brokers []string) relayProcess {
	b.Helper()
	if relay == relayDebezium {
		return startDebezium(b, url, brokers)
	}
	// The test binary again, running TestPeerRelayProcess alone.
	// PEER_TEST_FLAGS_RELAY go to that relay's test binary, such as
	// -test.blockprofile=FILE for where it waits.
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestPeerRelayProcess$", "-test.bench=^$", "-test.timeout=0"},
		strings.Fields(os.Getenv("PEER_TEST_FLAGS_"+strings.ToUpper(relay)))...)...)
	cmd.Env = append(os.Environ(), "PEER_RELAY="+relay, "PEER_DATABASE_URL="+url, "PEER_BROKERS="+strings.Join(brokers, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var out strings.Builder
	for lines.Scan() && lines.Text() != peerRelayReady {
		out.WriteString(lines.Text() + "\n")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	stop := sync.OnceFunc(func() {
		stdin.Close() // the relay stops at the end of its input
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("%s relay: %v\n%s%s", relay, err, out.String(), stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			b.Errorf("%s relay did not stop within 30 s", relay)
		}
	})
	b.Cleanup(stop)
	return relayProcess{name: relay, pid: cmd.Process.Pid, stop: func(testing.TB) { stop() }, failed: func() error {
		if cmd.ProcessState != nil {
			return fmt.Errorf("%s relay exited: %s%s", relay, out.String(), stderr.String())
		}
		return nil
	}}
}

// peerRelayReady is the line a relay process prints once it runs.
const peerRelayReady = "relay running"

// TestPeerRelayProcess is not a test: it is the process BenchmarkPeers
// starts for a Go relay (PEER_RELAY), which runs until its standard input
// ends.
func TestPeerRelayProcess(t *testing.T) {
	relay := os.Getenv("PEER_RELAY")
	if relay == "" {
		return // an ordinary test run: nothing to do, and no skip to report
	}
	url, brokers := os.Getenv("PEER_DATABASE_URL"), strings.Split(os.Getenv("PEER_BROKERS"), ",")
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var stop func()
	switch relay {
	case relayForwarder:
		// As the services run it: the defaults of FORWARDER_* (batches of
		// 1,000, polls every 20 ms while events come, else every 1 s).
		stop = runForwarder(t, pool, brokers, 0, 0)
	case relayForwarder100:
		stop = runForwarderWith(t, outbox.ForwarderConfig{DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes,
			ConsumerGroup: relayForwarder100, BatchSize: 100})
	case relayRaw:
		stop = runRawRelay(t, pool, brokers, "raw", peerTopic, 10*time.Millisecond)
	case relayWatermill:
		stop = runWatermillForwarder(t, stdlib.OpenDBFromPool(pool), brokers)
	default:
		t.Fatalf("PEER_RELAY=%s: not a relay", relay)
	}
	fmt.Println(peerRelayReady)
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
}

// runWatermillForwarder is Watermill's stock outbox path as its
// documentation shows it: the SQL subscriber on watermill-sql's default
// PostgreSQL schema and offsets adapter (defaults: batches of 100, a poll
// every second when nothing is new), Watermill's forwarder component
// unwrapping each envelope, and watermill-kafka's publisher, synchronous,
// one event per send, the partition key from the stream id. Two settings
// differ from the defaults: acks=all, as the other relays have.
func runWatermillForwarder(t testing.TB, db *sql.DB, brokers []string) (stop func()) {
	logger := watermill.NopLogger{}
	subscriber, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
		SchemaAdapter:    wsql.DefaultPostgreSQLSchema{},
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	config := wkafka.DefaultSaramaSyncPublisherConfig()
	config.Producer.RequiredAcks = sarama.WaitForAll
	publisher, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers: brokers,
		Marshaler: wkafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
			return msg.Metadata.Get("stream_id"), nil
		}),
		OverwriteSaramaConfig: config,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := forwarder.NewForwarder(subscriber, publisher, logger, forwarder.Config{ForwarderTopic: watermillTopic})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	<-fwd.Running()
	return sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = publisher.Close()
	})
}

// watermillPublisher is how a Watermill user writes to the outbox:
// forwarder.Publisher wrapping watermill-sql's publisher, each Publish one
// INSERT of all its messages.
func watermillPublisher(t testing.TB, db *sql.DB) message.Publisher {
	p, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	return forwarder.NewPublisher(p, forwarder.PublisherConfig{ForwarderTopic: watermillTopic})
}

// watermillMessage is event i of a backlog as the stock path carries it:
// the payload fillBacklog stores, the metadata the forwarder would send.
func watermillMessage(id, stream string, version, i int) *message.Message {
	payload, _ := json.Marshal(map[string]any{"items": []map[string]any{{"quantity": 1, "sku": "sku-1", "unit_price": 100}}, "n": i})
	msg := message.NewMessage(id, payload)
	msg.Metadata = message.Metadata{"event_id": id, "event_type": "order.Benchmarked", "schema_version": "1",
		"stream_id": stream, "stream_version": fmt.Sprint(version)}
	return msg
}

// fillWatermill writes the backlog fillBacklog writes (same streams,
// versions and payloads, new ids) to the stock path's table, 100 events
// per transaction.
func fillWatermill(b *testing.B, pool *pgxpool.Pool, n int) {
	publisher := watermillPublisher(b, stdlib.OpenDBFromPool(pool))
	for tx := range n / 100 {
		msgs := make([]*message.Message, 100)
		for i := range msgs {
			e := tx*100 + i
			msgs[i] = watermillMessage(uuid.NewString(), fmt.Sprint("order-", e%5000), e/5000+1, e)
		}
		if err := publisher.Publish(peerTopic, msgs...); err != nil {
			b.Fatal(err)
		}
	}
}

// appender returns how the latency benchmarks append one event for relay:
// one transaction each, to the events table or, for Watermill's path, its
// own.
func appender(b *testing.B, relay string, pool *pgxpool.Pool) func(ctx context.Context, i int) (string, error) {
	if relay == relayWatermill {
		publisher := watermillPublisher(b, stdlib.OpenDBFromPool(pool))
		return func(_ context.Context, i int) (string, error) {
			id := uuid.NewString()
			return id, publisher.Publish(peerTopic, watermillMessage(id, "measured-"+id, 1, i))
		}
	}
	return appendMeasured(pool, "measured")
}

// slotName is the replication slot and publication of Debezium's
// connector on the database at url (slots are per server, so per database
// name).
func slotName(b testing.TB, url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	return "debezium_" + cfg.Database
}

// createSlot creates Debezium's publication and logical replication slot
// before the events it is to relay are written (a connector that creates
// its slot at start relays only what comes after), and drops the slot when
// the benchmark ends, before the database.
func createSlot(b *testing.B, pool *pgxpool.Pool, url string) {
	name := slotName(b, url)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE PUBLICATION `+name+` FOR TABLE events`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, name); err != nil {
		b.Fatalf("create the replication slot (the server needs wal_level=logical: scripts/bench-postgres.sh): %v", err)
	}
	b.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := pool.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, name)
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					b.Errorf("drop slot %s: %v", name, err)
				}
				return
			}
			time.Sleep(200 * time.Millisecond) // the walsender is still leaving
		}
	})
}

// startDebezium runs deployments/debezium's worker and connector on the
// database at url, as they are but for the database and slot.
func startDebezium(b *testing.B, url string, brokers []string) relayProcess {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	name := slotName(b, url)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := kafkaconnect.Start(ctx, kafkaconnect.Config{
		Dir:       b.TempDir(),
		Worker:    filepath.Join("..", "..", "deployments", "debezium", "worker.properties"),
		Connector: filepath.Join("..", "..", "deployments", "debezium", "order-events.properties"),
		Brokers:   brokers,
		ConnectorSettings: map[string]string{
			"database.hostname": cfg.Host, "database.port": fmt.Sprint(cfg.Port), "database.user": cfg.User,
			"database.dbname": cfg.Database, "slot.name": name, "publication.name": name, "topic.prefix": name,
		},
		Log: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := sync.OnceFunc(func() {
		if err := w.Stop(); err != nil {
			b.Error(err)
		}
	})
	b.Cleanup(stop)
	return relayProcess{name: relayDebezium, pid: w.Pid(), stop: func(testing.TB) { stop() }, failed: func() error {
		return w.Failed(context.Background())
	}}
}

func resetTopic(b *testing.B, cluster *kafkacluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cluster.ResetTopics(ctx, 4, peerTopic); err != nil {
		b.Fatal(err)
	}
}

func admin(b *testing.B, cluster *kafkacluster.Cluster) *kadm.Client {
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.Brokers()...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.Close)
	return kadm.NewClient(client)
}

// endOffsets is the number of records on peerTopic, all partitions.
func endOffsets(b testing.TB, adm *kadm.Client) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, peerTopic)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// drainCutoff bounds a drain: a relay that takes longer is measured on what
// it relayed by then.
const drainCutoff = time.Minute

// waitDrained waits until n records more than base are on peerTopic and
// returns the events per second from the first record to the last (start-up,
// a JVM's included, is not counted), and how many it relayed: n, or fewer if
// it took longer than drainCutoff, the rate being that of the cutoff.
func waitDrained(b *testing.B, adm *kadm.Client, base, n int64, r relayProcess) (rate float64, relayed int64) {
	var first time.Time
	deadline := time.Now().Add(drainCutoff + 2*time.Minute) // the first record within 2 minutes
	for {
		got := endOffsets(b, adm) - base
		now := time.Now()
		if got > 0 && first.IsZero() {
			first, deadline = now, now.Add(drainCutoff)
		}
		if got >= n || (!first.IsZero() && now.After(deadline)) {
			return float64(got) / now.Sub(first).Seconds(), min(got, n)
		}
		if err := r.failed(); err != nil {
			b.Fatal(err)
		}
		if now.After(deadline) {
			b.Fatalf("%s relayed nothing of %d events in 2 minutes", r.name, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// idleCosts waits 11 s for a relay with nothing to relay to settle, then returns its CPU
// milliseconds and the transactions of its database per second over 10 s
// (pg_stat_database, read from another database: an idle backend reports
// its counts up to 10 s late, so the drain's are all in before the window).
func idleCosts(b *testing.B, r relayProcess, url string) (cpuPerSecond, txPerSecond float64) {
	ctx := context.Background()
	other, err := postgres.WithDatabase(url, "postgres")
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, other)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	cfg, _ := pgx.ParseConfig(url)
	transactions := func() int64 {
		var n int64
		_, _ = conn.Exec(ctx, `SELECT pg_stat_clear_snapshot()`)
		if err := conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, cfg.Database).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	const d = 10 * time.Second
	time.Sleep(11 * time.Second)
	cpu0, tx0 := r.cpu(b), transactions()
	time.Sleep(d)
	cpu1, tx1 := r.cpu(b), transactions()
	return float64((cpu1 - cpu0).Milliseconds()) / d.Seconds(), float64(tx1-tx0) / d.Seconds()
}

// holdTransaction opens a write transaction (it takes a transaction id) in
// the server's postgres database after wait and keeps it open for hold; the
// returned function waits until it has ended.
func holdTransaction(b *testing.B, wait, hold time.Duration) func() {
	url, err := postgres.WithDatabase(testenv.ServerURL(), "postgres")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := context.Background()
		time.Sleep(wait)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Error(err)
			return
		}
		if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
			b.Error(err)
		}
		time.Sleep(hold)
		_ = tx.Rollback(ctx)
	}()
	return func() { <-done }
}

// warmUp warms the cluster up once per test binary (see warmUpCluster).
var warmUp sync.Once

// warmUpRounds is the most drains warmUpCluster runs.
const warmUpRounds = 8

// warmUpCluster drains backlogs with the forwarder and the raw relay, as the
// drain phase does, until the forwarder's rate has risen less than 10% in
// two rounds in a row, or after warmUpRounds, before anything is measured.
// Brokers just started are slow until their JVMs have compiled the paths
// the relays' records take: on a cluster started right before, the
// forwarder's 200k drain ran at 15,292, 19,535, 23,858 and 38,036 events/s
// in four iterations, and a new benchmark process on that cluster then
// began at 41,688; 400k records without headers produced before the run had
// not been enough, and neither was one round that rose little (17,062,
// 27,721, 29,001, then 51,343 to 87,137 in the measured drains).
func warmUpCluster(b *testing.B, cluster *kafkacluster.Cluster) {
	previous, flat := 0.0, 0
	for round := 1; round <= warmUpRounds; round++ {
		rate := drainPhase(b, cluster, backlog, []string{relayForwarder, relayRaw}, metrics{}, false)[relayForwarder]
		b.Logf("warm-up %d: the forwarder drained %.0f events/s", round, rate)
		if round > 1 && rate < previous*1.1 {
			flat++
		} else {
			flat = 0
		}
		if flat == 2 {
			return
		}
		previous = max(previous, rate)
	}
}

// printEnvironment prints the versions once: go test calls a benchmark
// function once per -count, and a line printed after the benchmark's name
// would split its result line.
var printEnvironment sync.Once

// printPeersEnvironment prints the versions the table's header names, as
// lines benchtable reads ("peers: NAME: VERSION").
func printPeersEnvironment(b *testing.B, nodes int) {
	java, err := kafkacluster.Java()
	if err != nil {
		b.Fatal(err)
	}
	out, _ := exec.Command(java, "-version").CombinedOutput()
	javaVersion, _, _ := strings.Cut(string(out), "\n")
	var pg string
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, testenv.ServerURL()); err == nil {
		_ = conn.QueryRow(ctx, `SHOW server_version`).Scan(&pg)
		conn.Close(ctx)
	}
	fmt.Printf("peers: Go: %s\npeers: PostgreSQL: %s\npeers: Kafka: %s (%d nodes, KRaft)\npeers: Debezium: %s\npeers: Java: %s\npeers: cores: %d\n",
		strings.TrimPrefix(runtime.Version(), "go"), pg, kafkacluster.KafkaVersion, nodes, kafkaconnect.DebeziumVersion, strings.TrimSpace(javaVersion), runtime.NumCPU())
}

func count(n int) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}
