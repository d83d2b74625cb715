package consumer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/consumer"
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
