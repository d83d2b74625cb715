package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Records reads topic from the start with franz-go, a client apart from the
// services' consumers, until it has records for at least want distinct
// event ids (the event_id header) or timeout passes, then until the topic is
// quiet for a moment (so duplicates are counted too), and returns all it read.
func Records(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("testenv: kafka client: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var records []*kgo.Record
	distinct := map[string]bool{}
	poll := func(ctx context.Context) int {
		n := 0
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			records = append(records, r)
			distinct[Header(r, "event_id")] = true
			n++
		})
		return n
	}
	for len(distinct) < want && ctx.Err() == nil {
		poll(ctx)
	}
	for ctx.Err() == nil {
		quiet, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		n := poll(quiet)
		cancel()
		if n == 0 {
			break
		}
	}
	return records
}

// Header returns the value of a record's header, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// RecordCount counts the records in topic: over its partitions, the end
// offset minus the start offset. Unlike Records it never waits, so it can
// show that nothing more was written: a record whose produce call returned
// is counted.
func RecordCount(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("testenv: kafka client: %v", err)
	}
	defer client.Close()
	adm := kadm.NewClient(client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Retried: a partition's leader answers UNKNOWN_TOPIC_OR_PARTITION for
	// a moment after the topic is created or the leader moved.
	var starts, ends kadm.ListedOffsets
	for {
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err == nil {
			ends, err = adm.ListEndOffsets(ctx, topic)
		}
		if err == nil {
			err = ends.Error()
		}
		if err == nil || !kerr.IsRetriable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(end kadm.ListedOffset) {
		start, _ := starts.Lookup(end.Topic, end.Partition)
		n += end.Offset - start.Offset
	})
	return n
}

// Partitions returns how many partitions topic has.
func Partitions(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("testenv: kafka client: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := kadm.NewClient(client).ListTopics(ctx, topic)
	if err == nil {
		err = details[topic].Err
	}
	if err != nil {
		t.Fatalf("testenv: topic %s: %v", topic, err)
	}
	return len(details[topic].Partitions)
}
