package kafka

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The project's producers place a key where Kafka's Java client does:
// murmur2, checked against Sarama's implementation of the same function
// (written apart from franz-go's), so that Kafka Connect, Debezium or a
// script writing a stream's records agree with them on its partition
// (kcat_test.go checks the same with kcat on a broker).
func TestPartitionerIsKafkasStandardMurmur2(t *testing.T) {
	sar := sarama.NewMurmur2Partitioner("order.events")
	for _, partitions := range []int{1, 3, 4, 12} {
		ours := Partitioner.ForTopic("order.events")
		for i := range 1000 {
			key := fmt.Sprintf("order-%d-%x", i, i*7919)
			want, err := sar.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, int32(partitions))
			if err != nil {
				t.Fatal(err)
			}
			if got := ours.Partition(&kgo.Record{Key: []byte(key)}, partitions); got != int(want) {
				t.Fatalf("key %q of %d partitions: franz-go chose %d, Sarama %d", key, partitions, got, want)
			}
		}
	}
}

// A consumer whose JoinGroup may wait at the coordinator longer than the
// client reads for its answer never rejoins a group that has to wait for a
// lost member (found by the chaos suite: after a broker restart the payment
// consumer timed out every 30s and consumed nothing).
func TestJoinGroupIsAnsweredWithinTheReadTimeout(t *testing.T) {
	cfg := ConsumerConfig("test")
	if 2*cfg.Consumer.Group.Rebalance.Timeout >= cfg.Net.ReadTimeout {
		t.Errorf("twice the rebalance timeout %s is not shorter than the read timeout %s", cfg.Consumer.Group.Rebalance.Timeout, cfg.Net.ReadTimeout)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
