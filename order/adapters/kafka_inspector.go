package adapters

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
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

// Record is a record of a stream on a topic, as Records finds it.
type Record struct {
	Position
	// MessageID is its message UUID header: the event id of an event the
	// forwarder sent.
	MessageID string
	EventType string
}

// Limits of a search for records: an operator waits for a page, not for a
// scan of the topic.
const (
	findMaxRecords = 20000
	findTimeout    = 3 * time.Second
	// findSlack is how long before an event was recorded its record may be
	// stamped (clocks of different machines).
	findSlack = time.Minute
)

// Records returns the records with key on topic, in offset order: the
// stream's events as the forwarder sent them. It reads each partition
// from the first record stamped after since (less a minute) to its end,
// within limits, and stops once it has found want of them; a record it does
// not find within the limits is left out.
func (k *KafkaInspector) Records(ctx context.Context, topic, key string, since time.Time, want int) ([]Record, error) {
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
	if len(from) == 0 {
		return nil, nil
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ClientID("order-console"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var found []Record
	for read := 0; len(left) > 0 && len(found) < want && read < findMaxRecords; {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			if string(r.Key) == key {
				rec := Record{Position: Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}}
				for _, h := range r.Headers {
					switch h.Key {
					case messageUUIDHeader:
						rec.MessageID = string(h.Value)
					case contracts.EventTypeKey:
						rec.EventType = string(h.Value)
					}
				}
				found = append(found, rec)
			}
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	slices.SortFunc(found, func(a, b Record) int { return cmp.Compare(a.Offset, b.Offset) })
	return found, nil
}

// messageUUIDHeader carries a Watermill message's UUID, the event id of an
// event the forwarder sent (watermill-kafka's UUIDHeaderKey).
const messageUUIDHeader = "_watermill_message_uuid"
