package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
)

var traceContext = propagation.TraceContext{}

// InjectTrace writes the trace context of ctx (traceparent, tracestate) into
// metadata, so that it is stored with an event and travels with it.
func InjectTrace(ctx context.Context, metadata map[string]string) {
	traceContext.Inject(ctx, propagation.MapCarrier(metadata))
}

// ExtractTrace returns ctx carrying the remote trace context found in the
// message's metadata, so that a consumer's spans join the producer's trace.
func ExtractTrace(ctx context.Context, msg *message.Message) context.Context {
	return traceContext.Extract(ctx, propagation.MapCarrier(msg.Metadata))
}

// correlationIDKey carries a correlation id in a context. A correlation id
// ties together everything one request caused, across services: the HTTP
// middleware takes it from X-Correlation-ID (or makes one), events store it,
// Kafka headers carry it (contracts.CorrelationIDKey, which Watermill's
// CorrelationID middleware reads back), and every log line of a request or
// message shows it.
type correlationIDKey struct{}

// WithCorrelationID returns ctx carrying the correlation id of the request
// or message being handled, for the events it causes.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationIDKey{}, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationIDKey{}).(string)
	return id
}
