// Package messaging names the metadata every event carries on its way through
// Watermill and Kafka, and moves W3C trace context in and out of it.
package messaging

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.opentelemetry.io/otel/propagation"

	"github.com/es-outbox/reference/shared/eventstore"
)

// Metadata keys (and so Kafka header names) set on every forwarded event.
const (
	EventIDKey       = "event_id"
	EventTypeKey     = "event_type"
	SchemaVersionKey = "schema_version"
	StreamIDKey      = "stream_id"
	StreamVersionKey = "stream_version"
	// CorrelationIDKey is the key Watermill's CorrelationID middleware uses.
	CorrelationIDKey = middleware.CorrelationIDMetadataKey
	// TraceParentKey is the W3C trace context header.
	TraceParentKey = "traceparent"
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

// EventContext is the origin to store with events caused by the request or
// message being handled in ctx: its correlation id and trace context.
func EventContext(ctx context.Context) eventstore.Context {
	origin := eventstore.Context{CorrelationID: CorrelationID(ctx), Metadata: map[string]string{}}
	InjectTrace(ctx, origin.Metadata)
	return origin
}
