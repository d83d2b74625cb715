package kafka

import (
	"context"
	"fmt"
	"strings"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionKeyFunc returns the Kafka key of a message; messages with the same
// key go to the same partition, in order. "" means no key.
type PartitionKeyFunc func(msg *message.Message) string

// Publisher is a Watermill message.Publisher on the project's producer
// (NewOrderedProducer): acks from all in-sync replicas, idempotent, keys
// placed by Partitioner (murmur2, as Kafka's Java client). Each message
// becomes a record in watermill-kafka's format (NewRecord), which the
// consumers' watermill-kafka subscribers read. The poison queue middleware
// publishes with it.
type Publisher struct {
	client  *kgo.Client
	brokers []string
	key     PartitionKeyFunc
}

// PublishTimeout bounds how long Publish waits for Kafka to take a message
// before it fails: about half a minute, so that a short broker outage is no
// error, while a consumer that cannot poison a message fails it (to be
// redelivered) rather than waiting for ever.
const PublishTimeout = 30 * time.Second

// NewPublisher returns a publisher to brokers, named clientID to them, that
// keys each message with key. It connects on first use. opts come after the
// producer's settings and override them.
func NewPublisher(brokers []string, clientID string, key PartitionKeyFunc, opts ...kgo.Opt) (*Publisher, error) {
	client, err := NewOrderedProducer(brokers, clientID, append([]kgo.Opt{kgo.RecordDeliveryTimeout(PublishTimeout)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Publisher{client: client, brokers: brokers, key: key}, nil
}

// Publish sends msgs to topic and returns once Kafka has acknowledged every
// one of them (from all in-sync replicas), or with the first failure. The
// messages are sent together, in order within each partition.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	records := make([]*kgo.Record, len(msgs))
	for i, msg := range msgs {
		if _, ok := msg.Metadata[wkafka.UUIDHeaderKey]; ok {
			return fmt.Errorf("message %s: metadata %s is reserved for the message UUID", msg.UUID, wkafka.UUIDHeaderKey)
		}
		records[i] = NewRecord(topic, p.key(msg), msg)
	}
	// Not the messages' context: a message whose handler is being stopped
	// must still be either taken by Kafka or failed, never half sent.
	if err := p.client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		return fmt.Errorf("publish to %s at %s: %w", topic, strings.Join(p.brokers, ","), err)
	}
	return nil
}

// Close closes the producer; messages published before have been taken by
// Kafka already (Publish waits).
func (p *Publisher) Close() error {
	p.client.Close()
	return nil
}

// NewRecord is msg as a Kafka record in watermill-kafka's format, which
// consumers read with its DefaultMarshaler: the message UUID under
// wkafka.UUIDHeaderKey (left out when empty) and each metadata entry as a
// header, trace context (traceparent) and correlation id included. An empty
// key is no key. All header values share one buffer instead of taking an
// allocation each. (The forwarder builds its records in the same format
// straight from the events it reads, without a message per event.)
func NewRecord(topic, key string, msg *message.Message) *kgo.Record {
	size := len(msg.UUID)
	for _, v := range msg.Metadata {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	headers := make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)
	add := func(k, v string) {
		buf = append(buf, v...)
		headers = append(headers, kgo.RecordHeader{Key: k, Value: buf[len(buf)-len(v) : len(buf) : len(buf)]})
	}
	if msg.UUID != "" {
		add(wkafka.UUIDHeaderKey, msg.UUID)
	}
	for k, v := range msg.Metadata {
		add(k, v)
	}
	r := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: headers}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}
