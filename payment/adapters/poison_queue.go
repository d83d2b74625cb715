package adapters

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/es-outbox/reference/shared/kafka"
)

// PoisonedMessage is one message of the poison queue.
type PoisonedMessage struct {
	// ID is the poison-queue position, "partition/offset".
	ID        string            `json:"id"`
	MessageID string            `json:"message_id"`
	Key       string            `json:"key"`
	Metadata  map[string]string `json:"metadata"`
	Payload   string            `json:"payload"`
	Timestamp time.Time         `json:"timestamp"`
}

// ReadPoisonQueue returns every message on topic, oldest first, reading each
// partition from its start to its current end; it consumes no group offsets.
func ReadPoisonQueue(ctx context.Context, brokers []string, topic string) ([]PoisonedMessage, error) {
	client, err := sarama.NewClient(brokers, kafka.ConsumerConfig("payment-poison-reader"))
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka at %v: %w", brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	var out []PoisonedMessage
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		if start >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
		}
		for next := start; next < end; {
			select {
			case m := <-pc.Messages():
				next = m.Offset + 1
				out = append(out, toPoisoned(m))
			case err := <-pc.Errors():
				pc.Close()
				return nil, err
			case <-ctx.Done():
				pc.Close()
				return nil, ctx.Err()
			}
		}
		pc.Close()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

func toPoisoned(m *sarama.ConsumerMessage) PoisonedMessage {
	pm := PoisonedMessage{
		ID: fmt.Sprintf("%d/%d", m.Partition, m.Offset), Key: string(m.Key),
		Metadata: map[string]string{}, Payload: string(m.Value), Timestamp: m.Timestamp,
	}
	for _, h := range m.Headers {
		if string(h.Key) == wkafka.UUIDHeaderKey {
			pm.MessageID = string(h.Value)
			continue
		}
		pm.Metadata[string(h.Key)] = string(h.Value)
	}
	return pm
}
