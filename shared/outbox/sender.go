package outbox

import (
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
	s := &asyncSender{producer: producer}
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

// send hands msg to the producer for d; span ends when Kafka answers for it.
func (s *asyncSender) send(d Destination, msg *message.Message, span trace.Span) {
	record := kafkaRecord(d, msg)
	record.Metadata = span
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	s.producer.Input() <- record
}

// kafkaRecord is msg as a Kafka record in watermill-kafka's format (the
// message UUID under wkafka.UUIDHeaderKey and each metadata entry as a
// header), which consumers read with its DefaultMarshaler. It is built here
// rather than by that marshaler because it runs for every event: all header
// keys and values share one buffer instead of taking two allocations per
// entry. (batchEvents refuses metadata that would hide the UUID header.)
func kafkaRecord(d Destination, msg *message.Message) *sarama.ProducerMessage {
	size := len(wkafka.UUIDHeaderKey) + len(msg.UUID)
	for k, v := range msg.Metadata {
		size += len(k) + len(v)
	}
	buf := make([]byte, 0, size)
	headers := make([]sarama.RecordHeader, 0, len(msg.Metadata)+1)
	add := func(k, v string) {
		buf = append(buf, k...)
		buf = append(buf, v...)
		kv := buf[len(buf)-len(k)-len(v):]
		headers = append(headers, sarama.RecordHeader{Key: kv[:len(k):len(k)], Value: kv[len(k) : len(k)+len(v) : len(k)+len(v)]})
	}
	add(wkafka.UUIDHeaderKey, msg.UUID)
	for k, v := range msg.Metadata {
		add(k, v)
	}
	return &sarama.ProducerMessage{Topic: d.Topic, Key: sarama.StringEncoder(d.Key), Value: sarama.ByteEncoder(msg.Payload), Headers: headers}
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
