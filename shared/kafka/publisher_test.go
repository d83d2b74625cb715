package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/kafka"
)

// The poison queue's publisher keeps what a requeue and the consumers
// need: the key, on the partition Kafka's standard partitioner picks for it,
// the message UUID and every metadata entry as headers (trace context and
// correlation id included); a message without a key goes without one.
func TestPublisherKeepsKeysPartitionsAndHeaders(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := contracts.PaymentPoisonTopic
	pub, err := kafka.NewPublisher(brokers, "test-publisher", func(msg *message.Message) string { return msg.Metadata.Get("key") })
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 20
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprintf("id-%d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		if i > 0 {
			msgs[i].Metadata.Set("key", fmt.Sprintf("order-%d", i))
		}
		msgs[i].Metadata.Set(contracts.EventIDKey, msgs[i].UUID) // what testenv.Records counts
		msgs[i].Metadata.Set(contracts.TraceParentKey, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		msgs[i].Metadata.Set(contracts.CorrelationIDKey, fmt.Sprintf("corr-%d", i))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	partitions := testenv.Partitions(t, brokers, topic)
	byID := map[string]*kgo.Record{}
	for _, r := range testenv.Records(t, brokers, topic, n, 30*time.Second) {
		byID[testenv.Header(r, wkafka.UUIDHeaderKey)] = r
	}
	for i, msg := range msgs {
		r := byID[msg.UUID]
		switch {
		case r == nil:
			t.Errorf("message %s not on %s", msg.UUID, topic)
			continue
		case string(r.Value) != string(msg.Payload):
			t.Errorf("message %s: payload %q, want %q", msg.UUID, r.Value, msg.Payload)
		case i == 0 && r.Key != nil:
			t.Errorf("message %s without a key has key %q", msg.UUID, r.Key)
		case i > 0 && string(r.Key) != msg.Metadata.Get("key"):
			t.Errorf("message %s: key %q, want %q", msg.UUID, r.Key, msg.Metadata.Get("key"))
		case i > 0 && int(r.Partition) != kafka.Partitioner.ForTopic(topic).Partition(r, partitions):
			t.Errorf("message %s with key %s on partition %d, not where murmur2 puts it", msg.UUID, r.Key, r.Partition)
		}
		for k, v := range msg.Metadata {
			if got := testenv.Header(r, k); got != v {
				t.Errorf("message %s: header %s = %q, want %q", msg.UUID, k, got, v)
			}
		}
	}
	if err := pub.Publish(topic, &message.Message{UUID: "x", Metadata: message.Metadata{wkafka.UUIDHeaderKey: "y"}}); err == nil {
		t.Error("a message whose metadata would hide its UUID was published")
	}
}

// The publisher's writes wait for every in-sync replica: with one of three
// replicas stopped on a topic that requires three in sync, Kafka refuses
// them (a producer that waits for the leader alone is taken under the same
// conditions), and with all three back they are taken.
func TestPublisherIsAckedByAllInSyncReplicas(t *testing.T) {
	cluster := testenv.KafkaCluster(t) // skips on the development broker
	brokers := cluster.Brokers()
	topic := contracts.PaymentPoisonTopic
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	minISR := func(n string) {
		t.Helper()
		resps, err := kadm.NewClient(admin).AlterTopicConfigs(ctx,
			[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: kadm.StringPtr(n)}}, topic)
		if err == nil {
			_, err = resps.On(topic, nil)
		}
		if err != nil {
			t.Fatalf("min.insync.replicas=%s on %s: %v", n, topic, err)
		}
	}
	minISR("3")
	defer minISR("2")

	key := func(*message.Message) string { return "order-acks" }
	pub, err := kafka.NewPublisher(brokers, "test-acks", key, kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish(topic, message.NewMessage("all-in-sync", []byte("{}"))); err != nil {
		t.Fatalf("with every replica in sync: %v", err)
	}

	partitions := testenv.Partitions(t, brokers, topic)
	partition := int32(kafka.Partitioner.ForTopic(topic).Partition(&kgo.Record{Key: []byte("order-acks")}, partitions))
	leader, err := cluster.Leader(ctx, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	follower := cluster.Nodes[0].ID
	if follower == leader {
		follower = cluster.Nodes[1].ID
	}
	if err := cluster.Stop(follower); err != nil { // a clean stop leaves the ISR at once
		t.Fatal(err)
	}
	started := time.Now()
	if err := pub.Publish(topic, message.NewMessage("two-in-sync", []byte("{}"))); err == nil {
		t.Fatalf("with node %d stopped, two of three replicas in sync: published, want refused", follower)
	} else {
		t.Logf("with node %d stopped: refused after %s: %v", follower, time.Since(started).Round(time.Millisecond), err)
	}
	leaderOnly, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kafka.Partitioner))
	if err != nil {
		t.Fatal(err)
	}
	defer leaderOnly.Close()
	if err := leaderOnly.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("order-acks"), Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatalf("a leader-ack producer was refused too, so the test shows nothing about acks: %v", err)
	}

	if err := cluster.StartNode(follower); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, message.NewMessage("all-in-sync-again", []byte("{}"))); err != nil {
		t.Fatalf("with every replica in sync again: %v", err)
	}
}
