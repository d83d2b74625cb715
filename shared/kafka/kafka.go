// Package kafka builds the project's Kafka clients with the settings it
// relies on: one producer construction for every write (NewOrderedProducer:
// franz-go's idempotent producer, acks from all in-sync replicas, Kafka's
// standard murmur2 partitioner) with a Watermill publisher on it, and
// watermill-kafka (Sarama) subscribers whose new consumer groups start from
// the oldest offset.
package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LogClientTo sends Sarama's own log (group joins, claims, retries,
// releases) to logger at debug level when logger logs debug; Sarama is silent
// otherwise, and a consumer group that stops moving cannot be read without it.
func LogClientTo(logger *slog.Logger) {
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		sarama.Logger = slog.NewLogLogger(logger.With("component", "sarama").Handler(), slog.LevelDebug)
	}
}

// ConsumerConfig is for consumer groups: a new group starts from the oldest
// offset (Sarama's default, the newest, would silently skip what is already
// in the topic).
func ConsumerConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Version = sarama.V3_6_0_0
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	// A JoinGroup request waits at the coordinator up to the rebalance
	// timeout for the group's other members, and every join restarts that
	// wait; Sarama reads the answer with the ordinary Net.ReadTimeout. When
	// a member dies (kill -9, a broker restart), the others join at
	// different moments: if a second join can push the deadline past the
	// first one's read timeout, that one times out, joins again, pushes it
	// again, and the group never settles (seen as "i/o timeout" every 30 s
	// for minutes). Twice the rebalance timeout must stay inside the read
	// timeout.
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Net.ReadTimeout = 60 * time.Second
	return cfg
}

// NewOrderedProducer returns a franz-go client as the project's producer:
// every write of the project to Kafka goes through it (the outbox
// forwarder; Publisher, which the poison queue middleware publishes with;
// the poison queue's requeue). It keeps each partition in order whatever
// happens to the brokers, as Kafka's idempotent producer: acks from all in-sync
// replicas, up to five produce requests in flight per broker, each batch
// numbered so that the partition leader takes them only in sequence and
// drops a retried one it already has, through leader failover too (the
// sequence state is replicated with the log). It retries a record until
// Kafka takes it, with no delivery timeout: the forwarder can do nothing
// with a failure but send the same batch again, and the outbox lag metrics
// show an outage (the poison and requeue publishers set a delivery timeout:
// someone waits for their answer). If a record ever fails, every later
// record of its partition fails too, so a resend restores the order.
//
// Sarama's producers are not used: its AsyncProducer gives up on a record
// at once in some paths while the broker is away (no metadata, circuit
// breaker open) and sends later records of the same partition, so after a
// broker restart later events arrived before earlier ones; one producer
// construction for every write keeps the settings that matter (acks,
// idempotence, the partitioner) in one place. The consumers stay on
// Sarama's consumer groups (watermill-kafka's subscriber for the poison
// topics, shared/consumer's own for the rest).
//
// opts come after these settings and override them (the poison and requeue
// publishers add timeouts; benchmarks compare other settings).
func NewOrderedProducer(brokers []string, clientID string, opts ...kgo.Opt) (*kgo.Client, error) {
	client, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(Partitioner),
		kgo.ProducerLinger(0), // send at once (the forwarder's sender holds its batches until it flushes them)
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer for %s: %w", strings.Join(brokers, ","), err)
	}
	return client, nil
}

// Partitioner puts a key on the partition Kafka's Java client puts it on
// (murmur2 of the key, as Kafka Connect, Debezium, Kafka Streams and kcat
// -X partitioner=murmur2_random do), so that every producer of a stream's
// records agrees on its partition and per-stream order holds whoever
// produced them. Every producer of the project uses it (NewOrderedProducer).
var Partitioner = kgo.StickyKeyPartitioner(nil)

// NewSubscriber returns a Watermill subscriber in the given consumer group.
// The message's Kafka key, partition and offset are in its context (see
// watermill-kafka's MessageKeyFromCtx and friends).
func NewSubscriber(brokers []string, group string, logger watermill.LoggerAdapter) (*wkafka.Subscriber, error) {
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: ConsumerConfig(group),
		ConsumerGroup:         group,
		ReconnectRetrySleep:   500 * time.Millisecond,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber for %s: %w", strings.Join(brokers, ","), err)
	}
	return sub, nil
}

// Reachable reports whether a TCP connection to any of the brokers opens.
func Reachable(ctx context.Context, brokers []string) bool {
	var d net.Dialer
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return true
		}
	}
	return false
}

// Ping returns an error unless one of the brokers accepts a connection.
func Ping(ctx context.Context, brokers []string) error {
	if Reachable(ctx, brokers) {
		return nil
	}
	return fmt.Errorf("no Kafka broker reachable at %s", strings.Join(brokers, ","))
}
