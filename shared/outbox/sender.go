package outbox

import (
	"slices"
	"sync"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/messaging"
)

// asyncSender hands events to a Sarama AsyncProducer without waiting for
// Kafka, so that the producer batches them, and lets the forwarder wait
// (flush) until Kafka has answered for every event handed over so far.
// Waiting for each event instead costs one Kafka round trip per event.
type asyncSender struct {
	producer  sarama.AsyncProducer
	marshaler wkafka.Marshaler
	collected sync.WaitGroup

	mu       sync.Mutex
	answered *sync.Cond // signalled whenever pending drops to zero
	pending  int        // events handed over that Kafka has not answered for
	failure  error      // the first send that failed since the last flush
}

func newAsyncSender(brokers []string) (*asyncSender, error) {
	producer, err := kafka.NewAsyncProducer(brokers, "forwarder")
	if err != nil {
		return nil, err
	}
	s := &asyncSender{producer: producer, marshaler: kafka.Marshaler(PartitionKey)}
	s.answered = sync.NewCond(&s.mu)
	s.collected.Add(2)
	go func() {
		defer s.collected.Done()
		for m := range producer.Successes() {
			s.answer(m, nil)
		}
	}()
	go func() {
		defer s.collected.Done()
		for e := range producer.Errors() {
			s.answer(e.Msg, e.Err)
		}
	}()
	return s, nil
}

// send hands msg to the producer; span ends when Kafka answers for it.
func (s *asyncSender) send(topic string, msg *message.Message, span trace.Span) error {
	record, err := s.marshaler.Marshal(topic, msg)
	if err != nil {
		return err
	}
	record.Headers = slices.DeleteFunc(record.Headers, func(h sarama.RecordHeader) bool { return string(h.Key) == readPlaceKey })
	record.Metadata = span
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	s.producer.Input() <- record
	return nil
}

func (s *asyncSender) answer(record *sarama.ProducerMessage, err error) {
	if span, ok := record.Metadata.(trace.Span); ok {
		messaging.End(span, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && s.failure == nil {
		s.failure = err
	}
	s.pending--
	if s.pending == 0 {
		s.answered.Broadcast()
	}
}

// flush waits until Kafka has answered for every event sent, and returns the
// first failure since the last flush. Sarama answers for every record, after
// its retries at the latest, so this ends.
func (s *asyncSender) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.pending > 0 {
		s.answered.Wait()
	}
	err := s.failure
	s.failure = nil
	return err
}

// close closes the producer once Kafka has answered for every event sent.
func (s *asyncSender) close() {
	s.producer.AsyncClose()
	s.collected.Wait()
}
