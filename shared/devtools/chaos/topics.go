package chaos

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
)

// Topics the checker reads.
const (
	orderEventsTopic   = contracts.OrderEventsTopic
	paymentEventsTopic = contracts.PaymentEventsTopic
	orderPoisonTopic   = contracts.OrderPoisonTopic
	paymentPoisonTopic = contracts.PaymentPoisonTopic
)

// readTopics reads the topics from the start with franz-go, a client apart
// from the services' consumers, until every event id in want has been
// seen and the topics are then quiet for a second, or until timeout. Records
// come in offset order within each partition, which is all the per-order
// check needs.
func readTopics(brokers []string, want map[string]bool, timeout time.Duration) ([]*kgo.Record, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(orderEventsTopic, paymentEventsTopic, orderPoisonTopic, paymentPoisonTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	missing := make(map[string]bool, len(want))
	for id := range want {
		missing[id] = true
	}
	var records []*kgo.Record
	for ctx.Err() == nil {
		wait, stop := context.WithTimeout(ctx, time.Second)
		fetches := client.PollFetches(wait)
		stop()
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			records = append(records, r)
			delete(missing, header(r, "event_id"))
			n++
		})
		if n == 0 && len(missing) == 0 {
			break
		}
	}
	return records, nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
