// Package poisonkafka is the poison queue's Kafka side, the same for both
// services: the handler that copies the poison topic into the poison store,
// the publisher that sends requeued messages back where they came from, and
// the queue on the poison store that requeues through it.
package poisonkafka

import (
	"context"
	"errors"
	"strconv"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// HandlePoisonQueue copies every record of the poison topic into the poison
// store (the partition and offset it was consumed from included, so that a
// requeue sends it back there), where people can list, requeue and discard them long after Kafka's
// retention has dropped the records. A record that cannot be stored is
// retried until it can (the router never poisons its own poison topic).
func HandlePoisonQueue(r *consumer.Router, topic string, queue *poisonapp.Queue) error {
	return r.Handle("store_poisoned", topic, func(ctx context.Context, msg *message.Message) error {
		e, err := poisonEntry(msg, topic)
		if err != nil {
			return err
		}
		return queue.Record(ctx, e)
	})
}

// poisonEntry reads a poison-topic record: its own position, and the
// metadata the poison queue added about where the message came from.
func poisonEntry(msg *message.Message, topic string) (poison.Entry, error) {
	ctx := msg.Context()
	partition, okPartition := wkafka.MessagePartitionFromCtx(ctx)
	offset, okOffset := wkafka.MessagePartitionOffsetFromCtx(ctx)
	if !okPartition || !okOffset {
		return poison.Entry{}, errors.New("poison record without its Kafka partition and offset")
	}
	md := msg.Metadata
	key, ok := md[contracts.PoisonedKeyKey]
	if !ok { // a record produced by hand: its own key is the original's
		k, _ := wkafka.MessageKeyFromCtx(ctx)
		key = string(k)
	}
	return poison.Entry{
		ID:         poison.IDFor(partition, offset),
		Record:     poison.Position{Topic: topic, Partition: partition, Offset: offset},
		PoisonedAt: poisonedAt(msg),
		Reason:     md.Get(contracts.ReasonPoisonedKey),
		Origin: poison.Position{
			Topic:     md.Get(contracts.PoisonedTopicKey),
			Partition: int32(parseOrUnknown(md.Get(contracts.PoisonedPartitionKey), 32)),
			Offset:    parseOrUnknown(md.Get(contracts.PoisonedOffsetKey), 64),
		},
		Key:       key,
		Handler:   md.Get(contracts.PoisonedHandlerKey),
		EventType: md.Get(contracts.EventTypeKey),
		MessageID: msg.UUID,
		Metadata:  md,
		Payload:   msg.Payload,
		Status:    poison.StatusNew,
	}, nil
}

// poisonedAt is when the poison queue took the message, else when the
// record was written.
func poisonedAt(msg *message.Message) time.Time {
	if at, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(contracts.PoisonedAtKey)); err == nil {
		return at
	}
	if at, ok := wkafka.MessageTimestampFromCtx(msg.Context()); ok && !at.IsZero() {
		return at
	}
	return time.Now()
}

// parseOrUnknown parses a partition or offset, or returns -1 (unknown).
func parseOrUnknown(s string, bits int) int64 {
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
