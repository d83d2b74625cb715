package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// step is the test's event: the n-th step of a key, and a text stored as is.
type step struct {
	Key  string `json:"key"`
	N    int    `json:"n"`
	Text string `json:"text"`
}

func (step) EventType() string  { return "test.Step" }
func (step) SchemaVersion() int { return 1 }

// steps is the test's aggregate: a stream of steps.
type steps struct {
	version int64
	changes []step
}

func (s *steps) Changes() []step        { return s.changes }
func (s *steps) OriginalVersion() int64 { return s.version }
func (s *steps) MarkCommitted()         { s.version += int64(len(s.changes)); s.changes = nil }

// A backlog of 40 keys × 10 steps, and more steps while it is consumed,
// by a router whose appends are grouped: the messages of a partition are
// handled together (fewer transactions than appends), and yet each key's
// steps are stored once each, in order, across a second consumer joining
// the group (a rebalance) and the first one stopping in the middle; the
// one message whose append PostgreSQL refuses is retried and poisoned
// alone, and every other message, of its key too, is stored.
func TestGroupedAppendsKeepKeyOrderAndAFailingMessageFailsAlone(t *testing.T) {
	brokers := testenv.Kafka(t)
	pool, _ := testenv.Database(t, eventstore.Migrations)
	const topic, poisonTopic, keys = "order.events", "payment.poison", 40
	const badKey, badStep = "k-7", 3

	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	produced := 0 // steps of every key
	produce := func(steps int) {
		var records []*kgo.Record
		for range steps {
			produced++
			for k := range keys {
				key, text := fmt.Sprintf("k-%d", k), "fine"
				if key == badKey && produced == badStep {
					text = "NUL \x00 is no text PostgreSQL stores"
				}
				value, _ := json.Marshal(step{Key: key, N: produced, Text: text})
				records = append(records, &kgo.Record{Topic: topic, Key: []byte(key), Value: value})
			}
		}
		if err := client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(10)

	// The handler dedupes by its stream, as the services' handlers do: a
	// step already stored is skipped.
	handle := func(ctx context.Context, msg *message.Message) error {
		var s step
		if err := json.Unmarshal(msg.Payload, &s); err != nil {
			return err
		}
		stream := "steps-" + s.Key
		events, err := eventstore.Load(ctx, pool, stream)
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return err
		}
		for _, e := range events {
			var stored step
			_ = json.Unmarshal(e.Payload, &stored)
			if stored.N >= s.N {
				return nil // a redelivery
			}
		}
		return eventstore.Commit[step](ctx, nil, stream, &steps{version: int64(len(events)), changes: []step{s}}, eventstore.ContextFrom(ctx))
	}
	newRouter := func() *consumer.Router {
		r, err := consumer.New(consumer.Config{
			Brokers: brokers, Group: "test", PoisonTopic: poisonTopic,
			Retries: consumer.Settings{MaxRetries: 2, RetryInterval: time.Millisecond},
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			Appends: eventstore.NewGroupCommit(pool, 0),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Handle("steps", topic, handle); err != nil {
			t.Fatal(err)
		}
		return r
	}
	stored := func() (n int) {
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n)
		return n
	}

	first := newRouter()
	stopFirst := testenv.Go(t, "first router", first.Run)
	testenv.Eventually(t, 60*time.Second, "a quarter of the backlog stored", func() bool { return stored() >= keys*produced/4 })
	// A second member joins: the group rebalances, each partition first
	// finishing the messages it handed out. Steps keep coming until the
	// second member handles some, then the first one stops.
	second := newRouter()
	testenv.Go(t, "second router", second.Run)
	testenv.Eventually(t, 60*time.Second, "the second consumer handling messages beside the first", func() bool {
		if second.Stats.Handled.Load() > 0 {
			return true
		}
		produce(1)
		return false
	})
	handledByFirst := first.Stats.Handled.Load()
	stopFirst()
	produce(5)
	testenv.Eventually(t, 60*time.Second, "every step but the bad one stored", func() bool { return stored() == keys*produced-1 })
	testenv.Eventually(t, 60*time.Second, "the bad step poisoned", func() bool {
		return first.Stats.Poisoned.Load()+second.Stats.Poisoned.Load() >= 1
	})
	// Only the bad step (twice at most, if the restart delivered it again
	// before its offset was stored): the restart poisons nothing.
	poisoned := testenv.Records(t, brokers, poisonTopic, 1, 30*time.Second)
	for _, r := range poisoned {
		if string(r.Key) != badKey || !strings.Contains(string(r.Value), `"n":3`) {
			t.Errorf("poisoned %s %s, want only step %d of %s", r.Key, r.Value, badStep, badKey)
		}
	}

	rows, err := pool.Query(context.Background(), `SELECT stream_id, stream_version, (payload->>'n')::int FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int{}
	for rows.Next() {
		var stream string
		var version int64
		var n int
		if err := rows.Scan(&stream, &version, &n); err != nil {
			t.Fatal(err)
		}
		got[stream] = append(got[stream], n)
	}
	rows.Close()
	for k := range keys {
		key := fmt.Sprintf("k-%d", k)
		var want []int
		for n := 1; n <= produced; n++ {
			want = append(want, n)
		}
		if key == badKey {
			want = slices.Delete(want, badStep-1, badStep)
		}
		if !slices.Equal(got["steps-"+key], want) {
			t.Errorf("%s stored steps %v, want %v: each once, in order", key, got["steps-"+key], want)
		}
	}
	var transactions int
	_ = pool.QueryRow(context.Background(), `SELECT count(DISTINCT transaction_id) FROM events`).Scan(&transactions)
	if transactions >= stored()/2 {
		t.Errorf("%d appends stored by %d transactions; want the messages handled together stored together", stored(), transactions)
	}
	t.Logf("%d appends in %d transactions; %d poisoned; %d messages handled by the first consumer before it stopped, %d by the second",
		stored(), transactions, first.Stats.Poisoned.Load()+second.Stats.Poisoned.Load(), handledByFirst, second.Stats.Handled.Load())
}
