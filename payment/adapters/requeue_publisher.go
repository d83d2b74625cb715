package adapters

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/es-outbox/reference/payment/domain/poison"
	"github.com/es-outbox/reference/shared/kafka"
)

// RequeuePublisher sends requeued messages back to Kafka with the project's
// producer settings (acks from all in-sync replicas, idempotent), keyed like
// the original so that the message joins its order's partition again.
//
// It connects on first use, so that commands that end up publishing nothing
// need no broker, and with short network timeouts, so that a broker nobody
// can reach is an error within seconds rather than minutes.
type RequeuePublisher struct {
	brokers []string

	mu       sync.Mutex
	producer sarama.SyncProducer
}

// NewRequeuePublisher returns a publisher to brokers; it connects on first use.
func NewRequeuePublisher(brokers []string) *RequeuePublisher {
	return &RequeuePublisher{brokers: brokers}
}

// Publish sends m and returns where it was written.
func (p *RequeuePublisher) Publish(ctx context.Context, m poison.Message) (poison.Position, error) {
	if err := ctx.Err(); err != nil {
		return poison.Position{}, err
	}
	producer, err := p.connect()
	if err != nil {
		return poison.Position{}, err
	}
	msg := &sarama.ProducerMessage{Topic: m.Topic, Value: sarama.ByteEncoder(m.Payload)}
	if m.Key != "" { // no key stays no key: Kafka spreads such records over partitions
		msg.Key = sarama.StringEncoder(m.Key)
	}
	if m.ID != "" {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(wkafka.UUIDHeaderKey), Value: []byte(m.ID)})
	}
	for k, v := range m.Metadata {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	partition, offset, err := producer.SendMessage(msg)
	if err != nil {
		return poison.Position{}, fmt.Errorf("publish to %s: %w", m.Topic, err)
	}
	return poison.Position{Topic: m.Topic, Partition: partition, Offset: offset}, nil
}

// Close closes the connection, if there is one.
func (p *RequeuePublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer == nil {
		return nil
	}
	err := p.producer.Close()
	p.producer = nil
	return err
}

func (p *RequeuePublisher) connect() (sarama.SyncProducer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.producer != nil {
		return p.producer, nil
	}
	cfg := kafka.ProducerConfig("payment-requeue")
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 1
	producer, err := sarama.NewSyncProducer(p.brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka at %s: %w", strings.Join(p.brokers, ","), err)
	}
	p.producer = producer
	return producer, nil
}
