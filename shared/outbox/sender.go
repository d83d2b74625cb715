package outbox

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/tracing"
)

// sender hands events to a Kafka producer without waiting for Kafka, and
// lets the forwarder send them all and wait (flush) until Kafka has
// answered for every event handed over so far. Waiting for each event
// instead costs one Kafka round trip per event. The producer holds what it
// is handed until the flush (kgo.ManualFlushing), so that a batch goes out
// as one produce request per broker rather than record by record in up to
// five: a backlog drains 1.6x as fast on the 3-node cluster
// (docs/benchmarks.md, "The forwarder's producer: one request per batch").
// The producer is kafka.NewOrderedProducer: it keeps each partition in
// order through broker outages, which per-stream order depends on. Each
// event goes as the record batchEvents made of it, in kafka.NewRecord's
// format.
type sender struct {
	client  *kgo.Client
	pending sync.WaitGroup // events handed over that Kafka has not answered for

	mu      sync.Mutex
	failure error // the first send that failed since the last flush
}

// producerOptions, if not nil, replace the sender's own settings (manual
// flushing, room for one batch) on top of kafka.NewOrderedProducer's; only
// benchmarks set them (export_test.go), to measure other settings beside
// the chosen ones.
var producerOptions []kgo.Opt

// newSender makes a sender for batches of up to batchSize events.
func newSender(brokers []string, batchSize int) (*sender, error) {
	opts := producerOptions
	if opts == nil {
		// One batch at a time is in the producer (see Forwarder.forward):
		// room for more would only matter if that changed, and then a
		// refused send (kgo.ErrMaxBuffered) says so.
		opts = []kgo.Opt{kgo.ManualFlushing(), kgo.MaxBufferedRecords(batchSize)}
	}
	client, err := kafka.NewOrderedProducer(brokers, "forwarder", opts...)
	if err != nil {
		return nil, err
	}
	return &sender{client: client}, nil
}

// send hands r to the producer; span ends when Kafka answers for it.
func (s *sender) send(r *kgo.Record, span trace.Span) {
	s.pending.Add(1)
	s.client.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
		tracing.End(span, err)
		if err != nil {
			s.mu.Lock()
			if s.failure == nil {
				s.failure = err
			}
			s.mu.Unlock()
		}
		s.pending.Done()
	})
}

// flush sends every event handed over and waits until Kafka has answered
// for each, and returns the first failure since the last flush. The
// producer retries until Kafka takes each record, so during a broker
// outage this waits for the broker (abort ends the wait).
func (s *sender) flush() error {
	_ = s.client.Flush(context.Background()) // it ends with the records, failed or not
	s.pending.Wait()                         // and every answer has been seen
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.failure
	s.failure = nil
	return err
}

// abort fails every event Kafka has not taken yet, once none is in flight,
// so that a flush waiting for an absent broker returns: the forwarder then
// confirms nothing of the batch, and it is sent again after a restart. It
// gives up waiting for requests in flight after abortTimeout.
func (s *sender) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	_ = s.client.AbortBufferedRecords(ctx)
}

// abortTimeout bounds how long a stopping forwarder waits for a broker that
// is away, first for the batch in flight, then for the requests in flight.
const abortTimeout = 5 * time.Second

// close fails what Kafka has not taken yet (nothing, after a drain) and
// closes the producer.
func (s *sender) close() {
	s.abort()
	s.client.Close()
}
