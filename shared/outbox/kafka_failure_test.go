package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/kafka"
)

// Kafka stops taking writes while events are being forwarded: on the
// development broker it answers every produce request with
// NOT_ENOUGH_REPLICAS; on the real cluster two of the three nodes are
// killed, leaving the partition's leader below min.insync.replicas. The
// forwarder must report nothing as sent: its stored offset stays where it
// was while Kafka refuses (an acks=1 producer would move it, since the
// leader still appends). Once Kafka takes writes again every event arrives,
// and a consumer that skips what it has already seen gets each stream's
// events in order.
func TestForwarderRefusedByKafkaLosesNothingAndStoresNoOffsetPastIt(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers, refuse, restore := refusingKafka(t)
	// Every stream on partition 0, the one whose leader stays up.
	streams := streamsOnPartition(20, 0)
	ids := appendToStreams(t, pool, streams, 0, 5) // 100 events
	startForwarder(t, pool, brokers, 50)
	before := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the first 100 events forwarded", func() bool { return storedOffset(t, pool) == before })

	refuse()
	for stream, more := range appendToStreams(t, pool, streams, 5, 10) { // 200 more
		ids[stream] = append(ids[stream], more...)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p := storedOffset(t, pool); p != before {
			t.Fatalf("the forwarder stored offset %v while Kafka refused every write; it was %v before", p, before)
		}
	}

	restore()
	seen := firstArrivals(testenv.Records(t, brokers, "order.events", 300, 90*time.Second))
	for stream, want := range ids {
		if !slices.Equal(seen[stream], want) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(seen[stream]), len(want), firstDifference(seen[stream], want))
		}
	}
}

// refusingKafka returns brokers for a test and the means to make them refuse
// every write to partition 0 of the project's topics, and to take writes
// again: on the development broker it answers every produce request with
// NOT_ENOUGH_REPLICAS; on the real cluster two of the three nodes are killed,
// leaving the partition's leader below min.insync.replicas.
func refusingKafka(t *testing.T) (brokers []string, refuse, restore func()) {
	if os.Getenv("TEST_KAFKA_CLUSTER") != "" {
		c := testenv.KafkaCluster(t)
		leader := leaderOf(t, c, 0)
		refuse = func() {
			for _, n := range c.Nodes {
				if n.ID != leader {
					mustDo(t, c.Kill(n.ID))
				}
			}
		}
		restore = func() {
			for _, n := range c.Nodes {
				mustDo(t, c.StartNode(n.ID))
			}
		}
		return c.Brokers(), refuse, restore
	}
	broker, err := devkafka.Start(devkafka.Config{Partitions: 4, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	var refusing atomic.Bool
	broker.RefuseProduceWhile(refusing.Load)
	return []string{broker.Addr()}, func() { refusing.Store(true) }, func() { refusing.Store(false) }
}

// While the forwarder waits for a Kafka that refuses writes, events appended
// after the one it waits on must still be visible to the other readers in
// commit order: the projector, and every other forwarder on the PostgreSQL
// server. They read below the oldest open transaction id, so a forwarder
// whose waiting transaction holds an id (a row lock) would stall them all
// for as long as the outage lasts.
func TestForwarderWaitingForKafkaHoldsNoOtherReaderBack(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers, refuse, restore := refusingKafka(t)
	streams := streamsOnPartition(2, 0)
	appendToStreams(t, pool, streams[:1], 0, 1)
	startForwarder(t, pool, brokers, 100)
	first := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the first event forwarded", func() bool { return storedOffset(t, pool) == first })

	refuse()
	defer restore()
	appendToStreams(t, pool, streams[:1], 1, 1)
	waiting := lastPosition(t, pool)
	testenv.Eventually(t, 30*time.Second, "the forwarder waiting for Kafka with the event it read", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE '%FROM events%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1 && storedOffset(t, pool) == first
	})

	ids := appendToStreams(t, pool, streams[1:], 0, 1)
	later := ids[streams[1]][0]
	testenv.Eventually(t, 10*time.Second, "the event appended after it visible to commit-order readers", func() bool {
		var visible bool
		err := pool.QueryRow(context.Background(), `SELECT transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			FROM events WHERE event_id = $1`, later).Scan(&visible)
		if err != nil {
			t.Fatal(err)
		}
		return visible
	})
	if p := storedOffset(t, pool); p != first {
		t.Fatalf("the forwarder stored offset %v while Kafka refused; it was %v, waiting on %v", p, first, waiting)
	}
}

// streamsOnPartition returns n stream ids whose events the project's
// partitioner puts on partition p of a 4-partition topic.
func streamsOnPartition(n int, p int) []string {
	part := kafka.Partitioner.ForTopic("order.events")
	var streams []string
	for i := 0; len(streams) < n; i++ {
		id := fmt.Sprintf("order-%d", i)
		if part.Partition(&kgo.Record{Key: []byte(id)}, 4) == p {
			streams = append(streams, id)
		}
	}
	return streams
}

// appendToStreams appends versions from to to-1+count of each stream, a
// round over the streams per version, and returns the event ids per stream.
func appendToStreams(t *testing.T, pool *pgxpool.Pool, streams []string, from, count int) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	for v := from; v < from+count; v++ {
		for _, stream := range streams {
			e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
			if err := eventstore.Append(context.Background(), pool, stream, int64(v), eventstore.Context{}, e); err != nil {
				t.Fatal(err)
			}
			ids[stream] = append(ids[stream], e.ID)
		}
	}
	return ids
}

// lastPosition is the position of the last event appended.
func lastPosition(t *testing.T, pool *pgxpool.Pool) eventstore.Position {
	t.Helper()
	var p eventstore.Position
	var tx string
	err := pool.QueryRow(context.Background(),
		`SELECT global_position, transaction_id::text FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).Scan(&p.GlobalPosition, &tx)
	if err != nil {
		t.Fatal(err)
	}
	if p.TransactionID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		t.Fatal(err)
	}
	return p
}

func leaderOf(t *testing.T, c *kafkacluster.Cluster, partition int32) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := c.Leader(ctx, "order.events", partition)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// storedOffset is the forwarder group's stored read position.
func storedOffset(t *testing.T, pool *pgxpool.Pool) eventstore.Position {
	t.Helper()
	var p eventstore.Position
	var tx string
	err := pool.QueryRow(context.Background(),
		`SELECT global_position, transaction_id::text FROM reader_positions WHERE reader = 'forwarder'`).Scan(&p.GlobalPosition, &tx)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start
	}
	if err != nil {
		t.Fatal(err)
	}
	p.TransactionID, err = strconv.ParseUint(tx, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The broker goes away twice while events are being appended and forwarded
// (kill -9: connections and requests in flight die with it) and comes back
// with its data: on the development broker the one broker process, on the
// real cluster the node that leads partition 0 at that moment, so that a
// new leader takes over and the old one comes back behind it. Every event
// arrives, and each stream's events first arrive in stream order: a
// producer that gave up on an event while the broker was away must not let
// a later event of its partition overtake it when the broker is back.
func TestForwarderKeepsStreamOrderAcrossBrokerRestarts(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	var brokers []string
	var crash, restart func()
	if os.Getenv("TEST_KAFKA_CLUSTER") != "" {
		c := testenv.KafkaCluster(t)
		brokers = c.Brokers()
		var killed int
		crash = func() { killed = leaderOf(t, c, 0); mustDo(t, c.Kill(killed)) }
		restart = func() { mustDo(t, c.StartNode(killed)) }
	} else {
		bin := testenv.Build(t, "github.com/es-outbox/reference/shared/devtools/cmd/devkafka")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"--port", port, "--data-dir", t.TempDir(), "--partitions", "4"}
		broker := testenv.Start(t, bin, nil, args...)
		testenv.Eventually(t, 10*time.Second, "the broker listening", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		brokers = []string{addr}
		crash = func() { broker.Kill() }
		restart = func() { broker = testenv.Start(t, bin, nil, args...) }
	}
	startForwarder(t, pool, brokers, 100)

	// The load goes on, about 400 events/s, until the forwarder has sent
	// events after the second restart: each outage falls in its middle.
	load, stopLoad := context.WithCancel(context.Background())
	appended := make(chan int, 1)
	go func() { appended <- appendUntil(load, t, pool, 20) }()
	forwarding := func(what string) {
		t.Helper()
		since := storedOffset(t, pool)
		testenv.Eventually(t, 60*time.Second, what, func() bool { return since.Before(storedOffset(t, pool)) })
	}
	for i := range 2 {
		forwarding(fmt.Sprintf("events forwarded before crash %d", i+1))
		crash()
		time.Sleep(5 * time.Second) // an outage of 5 s
		restart()
	}
	forwarding("events forwarded after the last restart")
	stopLoad()
	checkStreamsArrivedInOrder(t, pool, brokers, <-appended)
}

// firstArrivals returns, per key (stream), the event ids in the order of
// their first record: what a consumer that skips repeats sees.
func firstArrivals(records []*kgo.Record) map[string][]string {
	arrived := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range records {
		if id := testenv.Header(r, "event_id"); !seen[id] {
			seen[id] = true
			arrived[string(r.Key)] = append(arrived[string(r.Key)], id)
		}
	}
	return arrived
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// eventsUpTo returns the ids of the events at or before p in commit order.
func eventsUpTo(t *testing.T, pool *pgxpool.Pool, p eventstore.Position) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT event_id::text FROM events WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)`,
		strconv.FormatUint(p.TransactionID, 10), p.GlobalPosition)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Through a Kafka outage longer than Watermill's default ack deadline
// (30 s), the forwarder keeps waiting for the batch it sent and keeps its
// group's lock: it reads the batch once, a standby forwarder of the group
// reads nothing, and once Kafka is back every event arrives once. (With
// that deadline the subscriber gave the batch up after 30 s, ended its
// transaction, read the batch again and queued the copy behind the one
// waiting, to be sent again, and the standby could take the lock and send
// it as well.)
func TestForwarderOutlastingWatermillsAckDeadlineSendsItsBatchOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 35 s for Kafka")
	}
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers, refuse, restore := refusingKafka(t)
	streams := streamsOnPartition(10, 0)
	appendToStreams(t, pool, streams, 0, 1)
	holder, standby := &batchReads{}, &batchReads{}
	startForwarder(t, tracedPool(t, url, holder), brokers, 10)
	first := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the first events forwarded", func() bool { return storedOffset(t, pool) == first })

	refuse()
	defer restore()
	read := len(holder.get())
	appendToStreams(t, pool, streams, 1, 1)
	testenv.Eventually(t, 30*time.Second, "the forwarder waiting for Kafka with what it read", func() bool {
		return sessions(t, pool, `state = 'idle in transaction' AND query LIKE '%FROM events%'`) == 1
	})
	startForwarder(t, tracedPool(t, url, standby), brokers, 10)
	time.Sleep(35 * time.Second) // past the 30 s
	if got := holder.get()[read:]; len(got) != 1 {
		t.Errorf("through the outage the forwarder read batches of %v, want one", got)
	}
	if got := standby.get(); len(got) != 0 {
		t.Errorf("through the outage the standby forwarder read batches of %v, want none", got)
	}

	restore()
	last := lastPosition(t, pool)
	testenv.Eventually(t, 90*time.Second, "every event forwarded", func() bool { return storedOffset(t, pool) == last })
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 20 {
		t.Errorf("%d records for 20 events", n)
	}
}
