package adapters

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// ConsumerLag reads the lag of every consumer group from Kafka.
type ConsumerLag struct {
	admin *kadm.Client
}

// NewConsumerLag returns a reader of consumer-group lag from the brokers.
func NewConsumerLag(brokers []string) (*ConsumerLag, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("order-console"))
	if err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	return &ConsumerLag{admin: kadm.NewClient(client)}, nil
}

// Close closes the client.
func (c *ConsumerLag) Close() { c.admin.Close() }

// Lags returns each group's lag per topic, by group and topic.
func (c *ConsumerLag) Lags(ctx context.Context) ([]TopicLag, error) {
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
