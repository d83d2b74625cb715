// Package tracing follows a request through both services: it sets up
// OpenTelemetry tracing, starts the spans of sending and processing a
// message, moves W3C trace context in and out of message metadata, and
// carries the correlation id in a context. Every event stores the trace
// context and correlation id of the command that caused it, so spans and
// logs anywhere downstream (the forwarder minutes later, a consumer after a
// restart) join the command's trace.
package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Setup installs the global tracer provider and the W3C propagator. Spans
// are exported as the standard variables say: OTEL_TRACES_EXPORTER=otlp
// (OTLP over HTTP in JSON, to OTEL_EXPORTER_OTLP_ENDPOINT, by default
// http://localhost:4318) or console (one JSON document per span on standard
// output), and OTEL_SERVICE_NAME. With none of them set, nothing is exported
// and nothing printed, but trace ids are still made and stored with events.
// Call the returned function at shutdown to flush what is buffered.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, err
	}
	if name := os.Getenv("OTEL_SERVICE_NAME"); name != "" {
		res, _ = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(name)))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporter, err := exporterFromEnv()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if exporter != nil {
		opts = append(opts, sdktrace.WithBatcher(exporter))
	}
	provider := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return provider.Shutdown, nil
}

// exporterFromEnv is the exporter OTEL_TRACES_EXPORTER names, or nil for
// none. Unset, it is otlp if an OTLP endpoint is set and none otherwise
// (where the specification says otlp), so that a developer's machine with no
// collector is not told about it on every export.
func exporterFromEnv() (sdktrace.SpanExporter, error) {
	name := os.Getenv("OTEL_TRACES_EXPORTER")
	if name == "" && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		name = "otlp"
	}
	switch name {
	case "", "none":
		return nil, nil
	case "otlp":
		return newOTLPExporter()
	case "console":
		return stdouttrace.New()
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: want otlp, console or none", name)
	}
}

// Tracer is the project's tracer; spans are named by what they do.
func Tracer() trace.Tracer { return otel.Tracer("github.com/es-outbox/reference") }

// Do runs fn in a span named name (a command, a gateway call), recording
// the error it returns.
func Do(ctx context.Context, name string, kind trace.SpanKind, fn func(context.Context) error, attrs ...attribute.KeyValue) (err error) {
	ctx, span := Tracer().Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	defer func() { End(span, err) }()
	return fn(ctx)
}

// End ends span, recording err if there is one.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
