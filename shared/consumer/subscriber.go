package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/kafka"
)

// DefaultInFlight is how many messages of one partition a router hands its
// handlers at a time, at most.
const DefaultInFlight = 64

// closeWait is how long a closing subscriber waits for the messages out.
const closeWait = 10 * time.Second

// keySubscriber is a Watermill subscriber on a Sarama consumer group that
// hands the router the messages of a partition it has fetched together at
// once, instead of one at a time as watermill-kafka's subscriber does (it
// has no batch consumer; its PR #29 is open): what lets the handlers of
// one partition's messages run at the same time, and their appends go to
// the database together (Config.Appends). The messages of event types no
// handler takes are acked as they are fetched (skip).
//
// Per-key order holds, within what was fetched together and across: a
// message is handed over only when no earlier message of its key (the
// stream id) is still being handled, so the messages of one key are
// handled one after the other, each after the previous one was acked.
// Messages of other keys do not wait for it. At-least-once holds: the
// offset stored for a partition only ever moves past messages that were
// acked (a message poisoned by the middleware is acked once it is on the
// poison topic), so after a crash or a rebalance the new owner of the
// partition gets again every message after the first one not acked; its
// handler finds what the earlier delivery stored. A message nacked is
// handed over again, as by watermill-kafka. At most inFlight messages of a
// partition are out at a time: one message retried for long holds the
// offset, and after inFlight later ones also the reading, of its partition.
//
// When the group rebalances or the subscriber closes, the partition stops
// handing out messages and waits for those out to be acked before it lets
// go, as watermill-kafka waits for its one, so their offsets are stored;
// on close it waits at most closeWait (the router waits for its handlers
// 15 s), and what was out is delivered again after the restart. Closing
// does not cancel the messages' contexts: a handler in the middle of a
// message finishes it rather than failing (and being retried and poisoned)
// for the shutdown.
type keySubscriber struct {
	brokers  []string
	group    string
	inFlight int
	stats    *Stats // counts the messages skipped as handled
	logger   *slog.Logger

	// skips, by topic, says whether a message of an event type is skipped
	// (see skip).
	skips map[string]func(eventType string) bool

	closing context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
}

func newKeySubscriber(brokers []string, group string, inFlight int, stats *Stats, logger *slog.Logger) *keySubscriber {
	ctx, cancel := context.WithCancel(context.Background())
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	return &keySubscriber{brokers: brokers, group: group, inFlight: inFlight, stats: stats, logger: logger.With("group", group),
		skips: map[string]func(string) bool{}, ctx: ctx, closing: cancel}
}

// skip has the subscription to topic (made after) ack the messages whose
// event type (the event_type header) skips returns true for as they are
// fetched, instead of handing them out, and counts them as handled: their
// offsets are stored once every message before them is acked. A message
// with no event type is handed out.
func (s *keySubscriber) skip(topic string, skips func(eventType string) bool) {
	s.skips[topic] = skips
}

// Subscribe joins the consumer group on topic; the channel closes when the
// subscriber closes or ctx is done.
func (s *keySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	group, err := sarama.NewConsumerGroup(s.brokers, s.group, kafka.ConsumerConfig(s.group))
	if err != nil {
		return nil, fmt.Errorf("kafka consumer group %s on %s: %w", s.group, strings.Join(s.brokers, ","), err)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	abandon, giveUp := context.WithCancel(context.Background())
	stopAbandon := context.AfterFunc(ctx, func() { time.AfterFunc(closeWait, giveUp) })
	out := make(chan *message.Message)
	handler := &claimHandler{ctx: ctx, abandon: abandon, out: out, inFlight: s.inFlight, skips: s.skips[topic], stats: s.stats}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for err := range group.Errors() {
			s.logger.Warn("kafka consumer group", "topic", topic, "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		defer func() {
			stop()
			cancel()
			_ = group.Close()
			stopAbandon()
			giveUp()
			handler.deliveries.Wait() // nothing sends on out any more
			close(out)
		}()
		for ctx.Err() == nil {
			// Consume returns at every rebalance; it is called again to
			// join the next generation.
			if err := group.Consume(ctx, []string{topic}, handler); err != nil && ctx.Err() == nil {
				s.logger.Warn("kafka consume", "topic", topic, "err", err)
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}
	}()
	return out, nil
}

// Close stops every subscription and waits until they have let go.
func (s *keySubscriber) Close() error {
	s.closing()
	s.wg.Wait()
	return nil
}

// claimHandler hands out the messages of the partitions claimed.
type claimHandler struct {
	ctx        context.Context // done when the subscriber closes
	abandon    context.Context // done closeWait later: stop waiting for acks
	out        chan<- *message.Message
	inFlight   int
	skips      func(eventType string) bool // nil: none skipped
	stats      *Stats
	deliveries sync.WaitGroup
}

// skipped says whether a record is acked as it is fetched, not handed out.
func (h *claimHandler) skipped(record *sarama.ConsumerMessage) bool {
	if h.skips == nil {
		return false
	}
	for _, header := range record.Headers {
		if string(header.Key) == contracts.EventTypeKey {
			return h.skips(string(header.Value))
		}
	}
	return false
}

func (h *claimHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *claimHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// fetched is a message of the partition not yet acked.
type fetched struct {
	record *sarama.ConsumerMessage
	msg    *message.Message
	acked  bool
}

// delivery is the end of a message handed out: acked, or not (nacked while
// closing, or given up on).
type delivery struct {
	f     *fetched
	acked bool
}

// ConsumeClaim hands out a partition's messages: each as soon as no earlier
// one of its key is out, at most inFlight not yet acked.
func (h *claimHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	var (
		pending []*fetched                // not yet acked, in offset order
		queued  = map[string][]*fetched{} // by key: behind the one out
		out     = map[string]bool{}       // keys with a message out
		handed  int                       // messages out
		// Each message out ends once, and at most inFlight are out.
		ends    = make(chan delivery, h.inFlight)
		records = claim.Messages()
		ending  = sess.Context().Done() // nil once the partition stops handing out
		closing = h.ctx.Done()
	)
	// settle stores the offsets of the messages acked, up to the first not.
	settle := func() {
		for len(pending) > 0 && pending[0].acked {
			sess.MarkMessage(pending[0].record, "")
			pending = pending[1:]
		}
	}
	hand := func(f *fetched) {
		out[string(f.record.Key)] = true
		handed++
		h.deliveries.Add(1)
		go h.deliver(f, ends)
	}
	for {
		if ending == nil && handed == 0 {
			return nil // rebalanced, closed or the claim ended: nothing out any more
		}
		in := records
		if len(pending) >= h.inFlight || ending == nil {
			in = nil
		}
		select {
		case record, ok := <-in:
			if !ok {
				records, ending = nil, nil // the claim ended: wait for what is out
				continue
			}
			if h.skipped(record) {
				pending = append(pending, &fetched{record: record, acked: true})
				h.stats.Handled.Add(1)
				settle()
				continue
			}
			msg, err := wkafka.DefaultMarshaler{}.Unmarshal(record)
			if err != nil {
				return fmt.Errorf("message unmarshal failed: %w", err) // as watermill-kafka: resending makes no sense
			}
			msg.SetContext(withRecord(context.WithoutCancel(h.ctx), record))
			f := &fetched{record: record, msg: msg}
			pending = append(pending, f)
			if key := string(record.Key); out[key] {
				queued[key] = append(queued[key], f)
			} else {
				hand(f)
			}
		case d := <-ends:
			handed--
			key := string(d.f.record.Key)
			delete(out, key)
			if !d.acked {
				ending = nil // its offset cannot move past it: let go, it is delivered again
				continue
			}
			d.f.acked = true
			settle()
			if next := queued[key]; len(next) > 0 && ending != nil {
				if len(next) == 1 {
					delete(queued, key)
				} else {
					queued[key] = next[1:]
				}
				hand(next[0])
			}
		case <-ending:
			ending = nil // rebalance: stop handing out; wait for what is out, then let go
		case <-closing:
			closing, ending = nil, nil
		case <-h.abandon.Done():
			return nil // closing for too long: what is out is delivered again after the restart
		}
	}
}

// deliver hands a message to the router until it is acked, again after
// each nack (unless closing), and reports how it ended, once.
func (h *claimHandler) deliver(f *fetched, ends chan<- delivery) {
	defer h.deliveries.Done()
	msg := f.msg
	for {
		select {
		case h.out <- msg:
		case <-h.ctx.Done():
			ends <- delivery{f, false}
			return
		}
		select {
		case <-msg.Acked():
			ends <- delivery{f, true}
			return
		case <-msg.Nacked():
			msg = msg.Copy()
			msg.SetContext(f.msg.Context())
			select {
			case <-time.After(100 * time.Millisecond): // watermill-kafka's NackResendSleep
			case <-h.ctx.Done():
				ends <- delivery{f, false}
				return
			}
		case <-h.abandon.Done():
			ends <- delivery{f, false}
			return
		}
	}
}

// record is where a message came from in Kafka.
type record struct {
	partition int32
	offset    int64
	key       []byte
}

type recordKey struct{}

func withRecord(ctx context.Context, r *sarama.ConsumerMessage) context.Context {
	return context.WithValue(ctx, recordKey{}, record{r.Partition, r.Offset, r.Key})
}

// recordOf returns where the message came from: set by keySubscriber, or
// by watermill-kafka's subscriber (the poison topic's).
func recordOf(ctx context.Context) (record, bool) {
	if r, ok := ctx.Value(recordKey{}).(record); ok {
		return r, true
	}
	partition, ok := wkafka.MessagePartitionFromCtx(ctx)
	offset, _ := wkafka.MessagePartitionOffsetFromCtx(ctx)
	key, _ := wkafka.MessageKeyFromCtx(ctx)
	return record{partition, offset, key}, ok
}
