package poisonkafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/poison"
)

// RequeuePublisher sends requeued messages back to Kafka: to the partition
// each was consumed from, with its original key, acks from all in-sync
// replicas, idempotently. The partition is given, not derived from the key:
// a record produced by a client that hashes keys another way (kcat's CRC32,
// Sarama's FNV-1a) was consumed from the partition that client chose, where
// the other records of its key are, and goes back there. Only a message
// whose origin partition is unknown is placed by its key, with Kafka's
// standard (murmur2) partitioner.
//
// It connects on first use, so that commands that end up publishing nothing
// need no broker, and gives up on a broker nobody can reach within seconds
// rather than minutes.
type RequeuePublisher struct {
	brokers  []string
	clientID string

	mu     sync.Mutex
	client *kgo.Client
}

// NewRequeuePublisher returns a publisher to brokers, named clientID to
// them; it connects on first use.
func NewRequeuePublisher(brokers []string, clientID string) *RequeuePublisher {
	return &RequeuePublisher{brokers: brokers, clientID: clientID}
}

// Publish sends m and returns where it was written.
func (p *RequeuePublisher) Publish(ctx context.Context, m poison.Message) (poison.Position, error) {
	if err := ctx.Err(); err != nil {
		return poison.Position{}, err
	}
	client, err := p.connect()
	if err != nil {
		return poison.Position{}, err
	}
	// The record format of every producer of the project; no key stays no key.
	r := kafka.NewRecord(m.Topic, m.Key, &message.Message{UUID: m.ID, Metadata: m.Metadata, Payload: m.Payload})
	r.Partition = m.Partition
	if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
		return poison.Position{}, fmt.Errorf("publish to %s at %s: %w", m.Topic, strings.Join(p.brokers, ","), err)
	}
	return poison.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, nil
}

// Close closes the connection, if there is one.
func (p *RequeuePublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	return nil
}

func (p *RequeuePublisher) connect() (*kgo.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	// The project's producer (acks from all in-sync replicas, idempotent),
	// with the origin partition kept, and a delivery timeout: an operator
	// waiting at a prompt gets an answer.
	client, err := kafka.NewOrderedProducer(p.brokers, p.clientID,
		kgo.RecordPartitioner(originPartitioner{kafka.Partitioner}),
		kgo.DialTimeout(3*time.Second),
		kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.MetadataMinAge(time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka at %s: %w", strings.Join(p.brokers, ","), err)
	}
	p.client = client
	return client, nil
}

// originPartitioner keeps a record on the partition it names; a record that
// names none (a negative partition) is placed by keyed.
type originPartitioner struct{ keyed kgo.Partitioner }

func (o originPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return originTopicPartitioner{o.keyed.ForTopic(topic)}
}

type originTopicPartitioner struct{ keyed kgo.TopicPartitioner }

// RequiresConsistency is true: a record must go to its partition even while
// that partition has no leader (it waits, up to the delivery timeout), never
// to another one.
func (originTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (o originTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return o.keyed.Partition(r, n)
}
