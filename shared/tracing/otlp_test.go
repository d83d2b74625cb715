package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// collector is an OTLP/HTTP receiver: it keeps what it was sent, decoded
// as OTLP's JSON, and answers the first `failures` requests with a 503.
type collector struct {
	mu       sync.Mutex
	failures int
	requests []map[string]any
	headers  []http.Header
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a POST of application/json to /v1/traces", http.StatusNotFound)
		return
	}
	if c.failures > 0 {
		c.failures--
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.requests = append(c.requests, req)
	c.headers = append(c.headers, r.Header.Clone())
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

// spans are the spans the collector received, in order, each with the
// resource attributes it came with under "resource".
func (c *collector) spans() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, req := range c.requests {
		for _, rs := range req["resourceSpans"].([]any) {
			rs := rs.(map[string]any)
			for _, ss := range rs["scopeSpans"].([]any) {
				for _, s := range ss.(map[string]any)["spans"].([]any) {
					span := s.(map[string]any)
					span["resource"] = rs["resource"]
					out = append(out, span)
				}
			}
		}
	}
	return out
}

func TestSpansReachAnOTLPCollectorAsTheCommandsTrace(t *testing.T) {
	c := &collector{failures: 1} // the first export finds the collector restarting
	server := httptest.NewServer(c)
	defer server.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20secret")

	shutdown, err := Setup(context.Background(), "order")
	if err != nil {
		t.Fatal(err)
	}
	ctx, command := Tracer().Start(context.Background(), "PlaceOrder", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("order.id", "o-1"), attribute.Int("order.items", 3)))
	failed := errors.New("gateway unavailable")
	_ = Do(ctx, "gateway.Charge", trace.SpanKindClient, func(context.Context) error { return failed })
	command.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := c.spans()
	if len(spans) != 2 {
		t.Fatalf("the collector got %d spans, want the command's and the gateway call's: %v", len(spans), spans)
	}
	charge, place := spans[0], spans[1]
	traceID := command.SpanContext().TraceID().String()
	for _, s := range spans {
		if s["traceId"] != traceID {
			t.Errorf("span %s: traceId %v, want the command's %s", s["name"], s["traceId"], traceID)
		}
		if !strings.Contains(mustJSON(t, s["resource"]), `{"key":"service.name","value":{"stringValue":"order"}}`) {
			t.Errorf("span %s: resource %s has no service.name order", s["name"], mustJSON(t, s["resource"]))
		}
	}
	if place["name"] != "PlaceOrder" || place["kind"] != 2.0 || place["parentSpanId"] != nil {
		t.Errorf("command span: %s, want PlaceOrder, kind 2 (server), no parent", mustJSON(t, place))
	}
	if got := mustJSON(t, place["attributes"]); got != `[{"key":"order.id","value":{"stringValue":"o-1"}},{"key":"order.items","value":{"intValue":"3"}}]` {
		t.Errorf("command span attributes: %s", got)
	}
	if charge["name"] != "gateway.Charge" || charge["kind"] != 3.0 || charge["parentSpanId"] != command.SpanContext().SpanID().String() {
		t.Errorf("gateway span: %s, want gateway.Charge, kind 3 (client), parent %s", mustJSON(t, charge), command.SpanContext().SpanID())
	}
	if got := mustJSON(t, charge["status"]); got != `{"code":2,"message":"gateway unavailable"}` {
		t.Errorf("gateway span status: %s, want code 2 (error) with the error", got)
	}
	if !strings.Contains(mustJSON(t, charge["events"]), `"name":"exception"`) {
		t.Errorf("gateway span events: %s, want the recorded error", mustJSON(t, charge["events"]))
	}
	if got := c.headers[0].Get("Authorization"); got != "Bearer secret" {
		t.Errorf("Authorization header %q, want the one OTEL_EXPORTER_OTLP_HEADERS names", got)
	}
}

func TestTracingRefusesASettingItCannotHonour(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"OTEL_TRACES_EXPORTER", "zipkin", "want otlp, console or none"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "set it to http/json"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "want an http:// or https:// address"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "want milliseconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv(tc.name, tc.value)
			_, err := Setup(context.Background(), "order")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%s: error %v, want one saying %q", tc.name, tc.value, err, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
