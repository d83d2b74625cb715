package kafkacluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// admin is a short-lived admin client on the running nodes.
func (c *Cluster) admin() (*kadm.Client, func(), error) {
	var seeds []string
	for _, n := range c.Nodes {
		if c.Running(n.ID) {
			seeds = append(seeds, n.Addr())
		}
	}
	if len(seeds) == 0 {
		return nil, nil, errors.New("kafkacluster: no node is running")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(2), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// WaitHealthy waits until every node is running and in the cluster and
// every partition of every topic (the internal ones included) has a leader
// and all its replicas in sync: the state a fault test must leave behind.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, 3*time.Minute, errors.New("kafkacluster: not healthy after 3 minutes"))
	defer cancel()
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", context.Cause(ctx), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !c.Running(n.ID) {
			return fmt.Errorf("node %d is not running", n.ID)
		}
	}
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx)
	if err != nil {
		return err
	}
	if len(md.Brokers) != len(c.Nodes) {
		return fmt.Errorf("%d of %d brokers in the cluster", len(md.Brokers), len(c.Nodes))
	}
	for _, t := range md.Topics {
		if t.Err != nil {
			return fmt.Errorf("topic %s: %w", t.Topic, t.Err)
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 || len(p.ISR) < len(p.Replicas) {
				return fmt.Errorf("%s/%d: leader %d, in sync %v of %v", t.Topic, p.Partition, p.Leader, p.ISR, p.Replicas)
			}
		}
	}
	return nil
}

// CreateTopics creates the topics that do not exist yet, with partitions
// partitions on min(3, nodes) replicas; the brokers' defaults give them
// min.insync.replicas and no unclean leader election. It waits until every
// partition has a leader.
func (c *Cluster) CreateTopics(ctx context.Context, partitions int32, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	replicas := int16(min(3, len(c.Nodes)))
	for {
		resp, err := adm.CreateTopics(ctx, partitions, replicas, nil, topics...)
		if err != nil {
			return fmt.Errorf("kafkacluster: create topics: %w", err)
		}
		retry := false
		for _, r := range resp.Sorted() {
			switch {
			case r.Err == nil, errors.Is(r.Err, kerr.TopicAlreadyExists):
			case kerr.IsRetriable(r.Err):
				retry = true
			default:
				return fmt.Errorf("kafkacluster: create topic %s: %w", r.Topic, r.Err)
			}
		}
		if !retry {
			break
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	for {
		details, err := adm.ListTopics(ctx, topics...)
		if err == nil && ledBy(details, topics, replicas) && c.knownEverywhere(ctx, topics, replicas) {
			return nil
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("kafkacluster: topics without a leader: %w", err)
		}
	}
}

// knownEverywhere reports whether every running node's own metadata shows
// the topics led and replicated. A topic created through one broker reaches
// the others' metadata a moment later, and a client asking one of those
// meanwhile is told the topic is not there (UNKNOWN_TOPIC_OR_PARTITION).
func (c *Cluster) knownEverywhere(ctx context.Context, topics []string, replicas int16) bool {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	for _, n := range c.Nodes {
		if !c.Running(n.ID) {
			continue
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
		if err != nil {
			return false
		}
		resp, err := cl.SeedBrokers()[0].Request(ctx, req) // this node, not any
		cl.Close()
		if err != nil {
			return false
		}
		details := kadm.TopicDetails{}
		for _, t := range resp.(*kmsg.MetadataResponse).Topics {
			d := kadm.TopicDetail{Topic: *t.Topic, Err: kerr.ErrorForCode(t.ErrorCode), Partitions: kadm.PartitionDetails{}}
			for _, p := range t.Partitions {
				d.Partitions[p.Partition] = kadm.PartitionDetail{Topic: *t.Topic, Partition: p.Partition, Leader: p.Leader, ISR: p.ISR, Replicas: p.Replicas}
			}
			details[*t.Topic] = d
		}
		if !ledBy(details, topics, replicas) {
			return false
		}
	}
	return true
}

// ledBy reports whether every topic exists and each of its partitions has a
// leader and all its replicas.
func ledBy(details kadm.TopicDetails, topics []string, replicas int16) bool {
	for _, name := range topics {
		t, ok := details[name]
		if !ok || t.Err != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 || len(p.ISR) < int(replicas) {
				return false
			}
		}
	}
	return true
}

// ResetTopics deletes the topics and every consumer group, then creates the
// topics anew: an empty cluster for the next test, without restarting it.
// It fails, naming them, if members stay in a group for a minute: a
// consumer still running from an earlier test, that would take part of the
// next test's records.
func (c *Cluster) ResetTopics(ctx context.Context, partitions int32, topics ...string) error {
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	// Asked again every 10 s until they are gone: a deletion sent while
	// the controller moved may be lost.
	var asked time.Time
	for {
		if time.Since(asked) > 10*time.Second {
			if _, err := adm.DeleteTopics(ctx, topics...); err != nil && ctx.Err() != nil {
				return fmt.Errorf("kafkacluster: delete topics: %w", err)
			}
			asked = time.Now()
		}
		details, err := adm.ListTopics(ctx, topics...)
		if err == nil && !anyExists(details) {
			break
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("kafkacluster: topics not deleted: %w", err)
		}
	}
	if err := deleteGroups(ctx, adm, time.Minute); err != nil {
		return err
	}
	return c.CreateTopics(ctx, partitions, topics...)
}

// deleteGroups deletes every consumer group, waiting up to patience for
// the members of each to leave: one of a process killed -9 leaves when its
// session times out (10 s for Sarama's consumers).
func deleteGroups(ctx context.Context, adm *kadm.Client, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		groups, err := adm.ListGroups(ctx)
		if err == nil && len(groups) == 0 {
			return nil
		}
		if err == nil {
			_, _ = adm.DeleteGroups(ctx, groups.Groups()...) // a group with members refuses
		}
		if time.Now().After(deadline) && err == nil {
			return fmt.Errorf("kafkacluster: consumer groups still have members after %s: %s", patience, members(ctx, adm, groups.Groups()))
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("kafkacluster: consumer groups not deleted: %w", err)
		}
	}
}

// members names the members of groups: group, client id and host.
func members(ctx context.Context, adm *kadm.Client, groups []string) string {
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, g := range described.Sorted() {
		for _, m := range g.Members {
			names = append(names, fmt.Sprintf("%s: %s from %s", g.Group, m.ClientID, m.ClientHost))
		}
	}
	return strings.Join(names, "; ")
}

func anyExists(details kadm.TopicDetails) bool {
	for _, t := range details {
		if t.Err == nil {
			return true
		}
	}
	return false
}

// Leader returns the node that leads a partition, waiting while it has
// none: a broker's metadata may not show a topic created a moment ago
// through another broker yet.
func (c *Cluster) Leader(ctx context.Context, topic string, partition int32) (int, error) {
	adm, done, err := c.admin()
	if err != nil {
		return 0, err
	}
	defer done()
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if p, ok := details[topic].Partitions[partition]; ok && p.Leader >= 0 {
				return int(p.Leader), nil
			}
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return 0, fmt.Errorf("kafkacluster: %s/%d has no leader: %w", topic, partition, err)
		}
	}
}

// Coordinator returns the node that coordinates a consumer group.
func (c *Cluster) Coordinator(ctx context.Context, group string) (int, error) {
	adm, done, err := c.admin()
	if err != nil {
		return 0, err
	}
	defer done()
	r := adm.FindGroupCoordinators(ctx, group)[group]
	if r.Err != nil {
		return 0, fmt.Errorf("kafkacluster: coordinator of %s: %w", group, r.Err)
	}
	return int(r.NodeID), nil
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
