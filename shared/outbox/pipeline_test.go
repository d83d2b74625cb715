package outbox_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/outbox"
)

// batchReads is a pgx query tracer that records how many events each of
// the forwarder's reads of the events table returned, for the reads that
// returned any.
type batchReads struct {
	mu    sync.Mutex
	sizes []int64
}

type readOfEvents struct{}

func (r *batchReads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if strings.Contains(q.SQL, " FROM events") {
		return context.WithValue(ctx, readOfEvents{}, true)
	}
	return ctx
}

func (r *batchReads) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryEndData) {
	if ctx.Value(readOfEvents{}) != nil && q.Err == nil && q.CommandTag.RowsAffected() > 0 {
		r.mu.Lock()
		r.sizes = append(r.sizes, q.CommandTag.RowsAffected())
		r.mu.Unlock()
	}
}

func (r *batchReads) get() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// While Kafka has not acknowledged a full batch, the forwarder already
// reads the next one (a backlog drains at the pace of the slower of the
// two, not of their sum), but reads no further and confirms nothing: one
// batch at a time is in Kafka's hands. Once Kafka takes writes again every
// event arrives, each stream's in order.
func TestForwarderReadsTheNextBatchWhileKafkaAcknowledgesOne(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers, refuse, restore := refusingKafka(t)
	streams := streamsOnPartition(5, 0)
	ids := appendToStreams(t, pool, streams, 0, 1)
	reads := &batchReads{}
	f, err := outbox.NewForwarder(outbox.ForwarderConfig{
		DB: stdlib.OpenDBFromPool(tracedPool(t, url, reads)), Brokers: brokers, Routes: routes,
		PollInterval: 10 * time.Millisecond, BatchSize: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "forwarder", f.Run)
	before := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the first events forwarded", func() bool { return storedOffset(t, pool) == before })

	refuse()
	defer restore()
	// Counted before the append: the forwarder, polling, can read the first
	// two batches within a millisecond of its commit, before the test
	// would count anything after it. Until then every read returns nothing
	// (the events before are all confirmed), and those are not recorded.
	read := len(reads.get())
	// 30 more in one transaction, so that the forwarder reads them as
	// three batches of 10.
	err = pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		for v := 1; v <= 6; v++ {
			for _, stream := range streams {
				e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
				if err := eventstore.Append(context.Background(), tx, stream, int64(v), eventstore.Context{}, e); err != nil {
					return err
				}
				ids[stream] = append(ids[stream], e.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the batch after the one waiting for Kafka read", func() bool {
		return len(reads.get()) >= read+2
	})
	time.Sleep(time.Second) // time to read or confirm more, which it must not
	if got := reads.get()[read:]; !slices.Equal(got, []int64{10, 10}) {
		t.Errorf("while Kafka refused the first batch of 10 events, the forwarder read batches of %v, want the first and the next, [10 10]", got)
	}
	if p := storedOffset(t, pool); p != before {
		t.Fatalf("the forwarder stored offset %v while Kafka refused every write; it was %v before", p, before)
	}

	restore()
	last := lastPosition(t, pool)
	testenv.Eventually(t, 90*time.Second, "every event forwarded", func() bool { return storedOffset(t, pool) == last })
	seen := firstArrivals(testenv.Records(t, brokers, "order.events", 35, 60*time.Second))
	for stream, want := range ids {
		if !slices.Equal(seen[stream], want) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(seen[stream]), len(want), firstDifference(seen[stream], want))
		}
	}
}
