package tracing

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/contracts"
)

// messageTracer is taken once: StartSend and StartProcess run for every event, and
// the global provider hands its spans on to the one set later.
var messageTracer = otel.Tracer("github.com/es-outbox/reference/shared/tracing")

// Send is what a producer span sends: a message to a Kafka topic.
type Send struct {
	Topic, Key, MessageID, EventType string
}

// StartSend starts the producer span of sending a message, as a child of
// the trace context in carrier (the message's headers, holding the trace
// context stored with the event), and puts the span's context in carrier,
// so the consumer's span is a child of this one. The forwarder calls it for
// every event, so the attributes are built only for a span that records
// (so samplers do not see them): without a tracer provider, or in a trace
// not sampled, the span then costs little.
func StartSend(carrier propagation.TextMapCarrier, s Send) trace.Span {
	ctx, span := messageTracer.Start(traceContext.Extract(context.Background(), carrier), "send "+s.Topic, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(s.Topic),
			semconv.MessagingKafkaMessageKey(s.Key),
			semconv.MessagingMessageID(s.MessageID),
			attribute.String("event.type", s.EventType),
		)
	}
	traceContext.Inject(ctx, carrier)
	return span
}

// KafkaOrigin is where a consumed message came from.
type KafkaOrigin struct {
	Topic, Group, Key string
	Partition         int32
	Offset            int64
}

// StartProcess starts the consumer span of processing msg, as a child of
// the producer's span carried in its metadata.
func StartProcess(msg *message.Message, origin KafkaOrigin) (context.Context, trace.Span) {
	return messageTracer.Start(ExtractTrace(msg.Context(), msg), "process "+origin.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(origin.Topic),
			semconv.MessagingConsumerGroupName(origin.Group),
			semconv.MessagingKafkaMessageKey(origin.Key),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(origin.Partition))),
			semconv.MessagingKafkaOffset(int(origin.Offset)),
			semconv.MessagingMessageID(msg.UUID),
			attribute.String("event.type", msg.Metadata.Get(contracts.EventTypeKey)),
		))
}
