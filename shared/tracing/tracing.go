// Package tracing sets up OpenTelemetry tracing. Every event stores the W3C
// trace context of the command that caused it, so spans anywhere downstream
// join the command's trace.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Setup installs a global tracer provider that creates real trace and span
// ids, and the W3C trace-context propagator. It exports nothing yet; call
// the returned function at shutdown.
func Setup() (shutdown func(context.Context) error) {
	provider := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return provider.Shutdown
}
