package kafka_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/kafka"
)

// Kafka's standard partitioner is the Java client's (murmur2); kcat, a
// librdkafka client, uses it with -X partitioner=murmur2_random. Records
// that kcat produces must land on the partition the project's producers
// choose for the same key, so that a stream stays on one partition whoever
// writes to it (Kafka Connect, Debezium, a script).
func TestKeysLandWhereKafkasStandardPartitionerPutsThem(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed (scripts/setup.sh installs it)")
		}
		t.Skip("needs kcat (Debian: apt-get install kcat; scripts/setup.sh installs it as root)")
	}
	brokers := testenv.Kafka(t)
	const topic, keys = "order.events", 200
	var lines strings.Builder
	for i := range keys {
		fmt.Fprintf(&lines, "order-%d-%x:v\n", i, i*7919)
	}
	cmd := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-P", "-t", topic, "-K:",
		"-X", "partitioner=murmur2_random", "-X", "topic.request.required.acks=-1")
	cmd.Stdin = strings.NewReader(lines.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}

	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ours := kafka.Partitioner.ForTopic(topic)
	partitions := testenv.Partitions(t, brokers, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for seen := 0; seen < keys && ctx.Err() == nil; {
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen++
			if want := ours.Partition(r, partitions); int(r.Partition) != want {
				t.Errorf("key %s: kcat put it on partition %d, the project's producers on %d", r.Key, r.Partition, want)
			}
		})
	}
	if ctx.Err() != nil {
		t.Fatalf("not all %d records kcat produced were read back", keys)
	}
}
