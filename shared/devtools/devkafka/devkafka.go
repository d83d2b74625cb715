// Package devkafka runs a development Kafka broker in-process: franz-go's kfake
// cluster, which speaks the real Kafka wire protocol (consumer groups,
// idempotent producers, transactions), on a loopback port. It is what the demo
// and the tests use; services never know it is not a real Kafka.
package devkafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/es-outbox/reference/shared/contracts"
)

// Topics are the topics the services use (contracts.Topics), created at start.
var Topics = contracts.Topics

// Config says where the broker listens and keeps its data.
type Config struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir keeps topics and consumer-group offsets across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Partitions of each topic created at start (and of auto-created ones).
	Partitions int32
	// Topics to create at start.
	Topics []string
}

// Broker is a running development broker.
type Broker struct {
	cluster *kfake.Cluster
	// client heartbeats on behalf of group members (armSessionTimers).
	client *kgo.Client
	// sequences are the idempotent producers' partitions this process has
	// taken a batch for (refuseForgottenSequences).
	sequences map[producerPartition]bool
}

type producerPartition struct {
	producerID int64
	topic      string
	partition  int32
}

// Start starts a single-broker cluster.
func Start(cfg Config) (*Broker, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 4
	}
	opts := []kfake.Opt{
		kfake.Ports(cfg.Port),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.ClusterID("devkafka"),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(cfg.Partitions, cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("devkafka: start on port %d: %w", cfg.Port, err)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()[0]))
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("devkafka: %w", err)
	}
	b := &Broker{cluster: cluster, client: client, sequences: map[producerPartition]bool{}}
	b.armSessionTimers()
	b.refuseForgottenSequences()
	return b, nil
}

// armSessionTimers works around a kfake bug that stalls consumer groups.
// kfake starts a member's session timer when it answers the member's
// JoinGroup; when the member died while its JoinGroup waited for the
// rebalance (a kill -9 during a rebalance), kfake may find the connection
// gone, skip the timer, and keep the dead member in the group for ever,
// holding the partitions the leader assigns it: nobody consumes them. Kafka
// expires such a member after its session timeout. So when the leader sends
// the assignment, the broker heartbeats once on behalf of every member in it,
// which starts each member's timer: a live member's own heartbeats keep it,
// a dead one expires as it would on Kafka.
func (b *Broker) armSessionTimers() {
	b.cluster.ControlKey(int16(kmsg.SyncGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		req := r.(*kmsg.SyncGroupRequest)
		for _, a := range req.GroupAssignment {
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.Generation, hb.MemberID = req.Group, req.Generation, a.MemberID
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = hb.RequestWith(ctx, b.client) // best effort: the next assignment tries again
			}()
		}
		return nil, nil, false
	})
}

// refuseForgottenSequences works around kfake forgetting the idempotent
// producers' sequence numbers when it restarts from its data directory (as
// after kill -9). Kafka keeps them with the log, so a producer's next batch
// after a broker restart must still follow its last one, and a batch that
// does not is refused; kfake instead takes whatever sequence comes first for
// a producer it does not know. With five requests in flight, that let a
// later batch in while an earlier one was being retried, out of order. So
// the broker refuses, with OUT_OF_ORDER_SEQUENCE_NUMBER, a batch that does
// not start a producer's sequence on a partition (sequence 0) unless this
// process has taken one of that producer's batches for the partition
// before: the client then takes a new producer id and sends everything
// again from sequence 0, in order, as it does when Kafka refuses a
// sequence.
func (b *Broker) refuseForgottenSequences() {
	b.cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		forgotten := false
		var taken []producerPartition
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				var batch kmsg.RecordBatch
				if batch.ReadFrom(p.Records) != nil || batch.ProducerID < 0 {
					continue // not an idempotent batch
				}
				key := producerPartition{batch.ProducerID, t.Topic, p.Partition}
				if batch.FirstSequence != 0 && !b.sequences[key] {
					forgotten = true
				}
				taken = append(taken, key)
			}
		}
		if !forgotten {
			for _, key := range taken {
				b.sequences[key] = true
			}
			return nil, nil, false
		}
		return produceError(req, kerr.OutOfOrderSequenceNumber.Code), nil, true
	})
}

// produceError answers every partition of req with code, writing nothing.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// Addr is the broker's host:port, for KAFKA_BROKERS.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Close stops the broker, flushing its data directory.
func (b *Broker) Close() {
	b.client.Close()
	b.cluster.Close()
}

// RefuseProduceWhile makes the broker answer every produce request with a
// retriable error (NOT_ENOUGH_REPLICAS, as when replicas are down) while
// refuse returns true, and write nothing of it; for tests of what producers
// do when Kafka refuses writes.
func (b *Broker) RefuseProduceWhile(refuse func() bool) {
	b.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.cluster.KeepControl()
		if !refuse() {
			return nil, nil, false
		}
		return produceError(req.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
	})
}
