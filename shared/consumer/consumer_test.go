package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

func TestAFailureOnThePoisonTopicIsRetriedNotPoisonedAgain(t *testing.T) {
	brokers := testenv.Kafka(t)
	router, err := consumer.New(consumer.Config{
		Brokers: brokers, Group: "test", PoisonTopic: "payment.poison",
		Retries: consumer.Settings{MaxRetries: 1, RetryInterval: time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const failures = 5 // more than one round of retries
	var calls atomic.Int64
	err = router.Handle("store_poisoned", "payment.poison", func(context.Context, *message.Message) error {
		if calls.Add(1) <= failures {
			return errors.New("poison store unavailable")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "router", router.Run)

	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rec := &kgo.Record{Topic: "payment.poison", Key: []byte("order-1"), Value: []byte("{}"),
		Headers: []kgo.RecordHeader{{Key: "topic_poisoned", Value: []byte("order.events")}}}
	if err := client.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 30*time.Second, "the poison record handled after its failures", func() bool {
		return router.Stats.Handled.Load() == 1
	})
	if got := calls.Load(); got != failures+1 {
		t.Errorf("handler called %d times, want %d", got, failures+1)
	}
	if got := router.Stats.Poisoned.Load(); got != 0 {
		t.Errorf("%d messages poisoned, want none", got)
	}
	if n := testenv.RecordCount(t, brokers, "payment.poison"); n != 1 {
		t.Errorf("payment.poison holds %d records, want the 1 produced", n)
	}
}

// A topic carries every event of its streams, and a consumer handles a few
// types: the others never reach a handler, yet their offsets are stored
// like any other's (a consumer that joins the group later gets none of
// them again), the messages handled keep their order per key, and a
// message with no event type goes to the poison queue rather than being
// skipped unseen. A skipped message leaves no span in the traces.
func TestMessagesOfTypesNoHandlerTakesAreSkippedAndStayConsumed(t *testing.T) {
	brokers := testenv.Kafka(t)
	spans := tracetest.NewSpanRecorder()
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(previous) })
	const topic, group, keys = "order.events", "skips", 4
	newRouter := func() *consumer.Router {
		r, err := consumer.New(consumer.Config{
			Brokers: brokers, Group: group, PoisonTopic: "payment.poison",
			Retries: consumer.Settings{MaxRetries: 1, RetryInterval: time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	record := func(key, eventType, value string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}
		if eventType != "" {
			r.Headers = []kgo.RecordHeader{{Key: contracts.EventTypeKey, Value: []byte(eventType)}}
		}
		return r
	}
	// Each key: handled, skipped, handled, skipped, so that what comes last
	// in every partition is skipped.
	var records []*kgo.Record
	for k := range keys {
		key := fmt.Sprintf("k-%d", k)
		for n := range 4 {
			eventType := "test.Handled"
			if n%2 == 1 {
				eventType = "test.Other"
			}
			records = append(records, record(key, eventType, key+" "+strconv.Itoa(n)))
		}
	}
	records = append(records, record("k-none", "", "no type"))
	if err := client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handled := map[string][]string{} // values by key
	first := newRouter()
	err = first.HandleEvents("handle", topic, consumer.Events{"test.Handled": func(_ context.Context, msg *message.Message) error {
		key, n, _ := strings.Cut(string(msg.Payload), " ")
		mu.Lock()
		defer mu.Unlock()
		handled[key] = append(handled[key], n)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := testenv.Go(t, "first router", first.Run)
	testenv.Eventually(t, 60*time.Second, "every message handled or skipped, the one with no type poisoned", func() bool {
		return first.Stats.Handled.Load() == 4*keys && first.Stats.Poisoned.Load() == 1
	})
	stopFirst() // its handlers have returned
	for k := range keys {
		if got := handled[fmt.Sprintf("k-%d", k)]; !slices.Equal(got, []string{"0", "2"}) {
			t.Errorf("k-%d: handled %v, want the two messages of the handled type, in order", k, got)
		}
	}
	processed := map[string]int{} // spans by key
	for _, span := range spans.Ended() {
		for _, a := range span.Attributes() {
			if a.Key == "messaging.kafka.message.key" {
				processed[a.Value.AsString()]++
			}
		}
	}
	for k := range keys {
		if n := processed[fmt.Sprintf("k-%d", k)]; n != 2 {
			t.Errorf("k-%d: %d spans of processing, want one for each of its 2 messages handled", k, n)
		}
	}

	// A consumer of every type that joins the group now gets only what
	// comes after.
	if err := client.ProduceSync(context.Background(), record("k-0", "test.Other", "after")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	second := newRouter()
	if err := second.Handle("all", topic, func(_ context.Context, msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, string(msg.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stopSecond := testenv.Go(t, "second router", second.Run)
	testenv.Eventually(t, 60*time.Second, "the message produced after handled", func() bool {
		return second.Stats.Handled.Load() >= 1
	})
	stopSecond()
	if !slices.Equal(seen, []string{"after"}) {
		t.Errorf("a consumer joining the group later got %q, want only the message produced after", seen)
	}
}
