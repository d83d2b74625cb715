package adapters

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicLag is how far a consumer group is behind on one topic: the records
// after its committed offsets, summed over the topic's partitions.
type TopicLag struct {
	Group string
	// State is the group's state as Kafka reports it: Stable, Empty, ...
	State string
	Topic string
	Lag   int64
	// Err says why the lag of some partitions is not known.
	Err string
}

// KafkaInspector reads what the console shows from Kafka: every consumer
// group's lag, and where events went.
type KafkaInspector struct {
	brokers []string
	admin   *kadm.Client
}

// NewKafkaInspector returns an inspector of the brokers' topics and groups.
func NewKafkaInspector(brokers []string) (*KafkaInspector, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("order-console"))
	if err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	return &KafkaInspector{brokers: brokers, admin: kadm.NewClient(client)}, nil
}

// Close closes the client.
func (c *KafkaInspector) Close() { c.admin.Close() }

// ConsumerLags returns each group's lag per topic, by group and topic.
func (c *KafkaInspector) ConsumerLags(ctx context.Context) ([]TopicLag, error) {
	described, err := c.admin.Lag(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer group lag: %w", err)
	}
	var lags []TopicLag
	for _, g := range described.Sorted() {
		if err := g.Error(); err != nil {
			lags = append(lags, TopicLag{Group: g.Group, State: g.State, Err: err.Error()})
			continue
		}
		for _, t := range g.Lag.TotalByTopic().Sorted() {
			lag := TopicLag{Group: g.Group, State: g.State, Topic: t.Topic, Lag: t.Lag}
			var errs []string
			for _, p := range g.Lag[t.Topic] {
				if p.Err != nil {
					errs = append(errs, fmt.Sprintf("partition %d: %v", p.Partition, p.Err))
				}
			}
			slices.Sort(errs)
			lag.Err = strings.Join(errs, "; ")
			lags = append(lags, lag)
		}
	}
	return lags, nil
}

// Position is where a record is in Kafka.
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Limits of a search for events in a topic: an operator waits for a page,
// not for a scan of the topic.
const (
	findMaxRecords = 20000
	findTimeout    = 3 * time.Second
	// findSlack is how long before an event was recorded its record may be
	// stamped (clocks of different machines).
	findSlack = time.Minute
)

// Find returns where in topic the records of the events with these ids
// (their message UUID header) are: it reads every partition from the first
// record stamped after since (less a minute) up to its end, within limits,
// so an event it does not find within them is left out.
func (k *KafkaInspector) Find(ctx context.Context, topic string, since time.Time, ids []string) (map[string]Position, error) {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	starts, err := k.admin.ListOffsetsAfterMilli(ctx, since.Add(-findSlack).UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	ends, err := k.admin.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition: its end offset
	starts.Each(func(o kadm.ListedOffset) {
		end, ok := ends.Lookup(topic, o.Partition)
		if ok && o.Offset >= 0 && o.Offset < end.Offset {
			from[o.Partition], left[o.Partition] = kgo.NewOffset().At(o.Offset), end.Offset
		}
	})
	found := map[string]Position{}
	if len(from) == 0 {
		return found, nil
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ClientID("order-console"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	for read := 0; len(left) > 0 && len(found) < len(wanted) && read < findMaxRecords; {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			for _, h := range r.Headers {
				if h.Key == messageUUIDHeader && wanted[string(h.Value)] {
					found[string(h.Value)] = Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
				}
			}
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return found, nil
}

// messageUUIDHeader carries a Watermill message's UUID, the event id of an
// event the forwarder sent (watermill-kafka's UUIDHeaderKey).
const messageUUIDHeader = "_watermill_message_uuid"
