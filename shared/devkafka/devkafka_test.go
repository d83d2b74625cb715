package devkafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devkafka"
	"github.com/es-outbox/reference/shared/testenv"
)

// A record acknowledged before a restart is still there after it: the demo
// and the fault tests rely on the data directory.
func TestRestartKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	broker, err := devkafka.Start(devkafka.Config{DataDir: dir, Partitions: 3, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "order.events", Key: []byte("order-1"), Value: []byte("kept"),
		Headers: []kgo.RecordHeader{{Key: "event_id", Value: []byte("e-1")}}}
	if err := client.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	client.Close()
	broker.Close()

	broker, err = devkafka.Start(devkafka.Config{DataDir: dir, Partitions: 3, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	records := testenv.Records(t, []string{broker.Addr()}, "order.events", 1, 10*time.Second)
	if len(records) != 1 || string(records[0].Value) != "kept" {
		t.Fatalf("after restart order.events holds %d records, want the one produced before", len(records))
	}
}
