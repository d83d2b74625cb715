// Package otlpcheck checks that the spans the services export over OTLP/HTTP
// (shared/tracing, which encodes OTLP's JSON itself) decode with the
// OpenTelemetry Collector's own decoder, the one its OTLP/HTTP receiver runs
// (pdata's ptrace.JSONUnmarshaler). It lives here, not beside the exporter,
// so that the collector's modules (and the gRPC they bring) stay out of the
// services' module.
package otlpcheck

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/es-outbox/reference/shared/tracing"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func TestExportedSpansDecodeAsOTLP(t *testing.T) {
	bodies := make(chan []byte, 10)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bodies <- body
	}))
	defer server.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", server.URL+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")

	shutdown, err := tracing.Setup(context.Background(), "payment")
	if err != nil {
		t.Fatal(err)
	}
	ctx, consume := tracing.Tracer().Start(context.Background(), "order.events process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.StringSlice("tags", []string{"a", "b"}), attribute.Float64("amount", 12.5), attribute.Bool("redelivered", true)))
	consume.AddEvent("retry", trace.WithAttributes(attribute.Int64("attempt", 2)))
	_ = tracing.Do(ctx, "ChargeOrder", trace.SpanKindInternal, func(context.Context) error { return errors.New("declined") })
	consume.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	traces, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(<-bodies)
	if err != nil {
		t.Fatalf("a collector would refuse the request: %v", err)
	}
	if traces.SpanCount() != 2 {
		t.Fatalf("got %d spans, want 2", traces.SpanCount())
	}
	resource := traces.ResourceSpans().At(0)
	spans := resource.ScopeSpans().At(0).Spans()
	charge, process := spans.At(0), spans.At(1)
	if process.TraceID() != pcommon.TraceID(consume.SpanContext().TraceID()) || charge.TraceID() != process.TraceID() {
		t.Errorf("trace ids %s and %s, want the consumer span's %s", process.TraceID(), charge.TraceID(), consume.SpanContext().TraceID())
	}
	if charge.ParentSpanID() != pcommon.SpanID(consume.SpanContext().SpanID()) {
		t.Errorf("ChargeOrder's parent %s, want %s", charge.ParentSpanID(), consume.SpanContext().SpanID())
	}
	if process.Kind() != ptrace.SpanKindConsumer || charge.Kind() != ptrace.SpanKindInternal {
		t.Errorf("kinds %v and %v, want consumer and internal", process.Kind(), charge.Kind())
	}
	if charge.Status().Code() != ptrace.StatusCodeError || charge.Status().Message() != "declined" {
		t.Errorf("ChargeOrder status %v %q, want an error, declined", charge.Status().Code(), charge.Status().Message())
	}
	if attempt, _ := process.Events().At(0).Attributes().Get("attempt"); attempt.Int() != 2 {
		t.Errorf("event attribute attempt = %v, want 2", attempt.AsRaw())
	}
	attrs := process.Attributes().AsRaw()
	if tags, _ := attrs["tags"].([]any); len(tags) != 2 || tags[1] != "b" || attrs["amount"] != 12.5 || attrs["redelivered"] != true {
		t.Errorf("attributes %v, want tags [a b], amount 12.5, redelivered true", attrs)
	}
	if process.StartTimestamp() == 0 || process.EndTimestamp() <= process.StartTimestamp() {
		t.Errorf("times %d..%d", process.StartTimestamp(), process.EndTimestamp())
	}
	if name, _ := resource.Resource().Attributes().Get("service.name"); name.Str() != "payment" {
		t.Errorf("resource %v has no service.name payment", resource.Resource().Attributes().AsRaw())
	}
}
