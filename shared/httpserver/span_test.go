package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/tracing"
)

// Every request gets a server span named after the route that served it,
// in the trace of the client's traceparent, and a correlation id.
func TestRequestSpanContinuesTheClientsTraceUnderItsRoute(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(provider)
	t.Cleanup(func() { otel.SetTracerProvider(previous) })

	var correlationID string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		correlationID = tracing.CorrelationID(r.Context())
		w.WriteHeader(http.StatusConflict)
	})
	srv := httptest.NewServer(httpserver.Handler(mux, httpserver.Ops{}))
	t.Cleanup(srv.Close)

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders/42/cancel", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set(httpserver.CorrelationIDHeader, "corr-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if correlationID != "corr-1" || resp.Header.Get(httpserver.CorrelationIDHeader) != "corr-1" {
		t.Errorf("correlation id %q in the handler, %q in the response; want the client's", correlationID, resp.Header.Get(httpserver.CorrelationIDHeader))
	}
	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	s := ended[0]
	if s.Name() != "POST /v1/orders/{id}/cancel" || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q of kind %v, want the route's, a server span", s.Name(), s.SpanKind())
	}
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != parentID {
		t.Errorf("span in trace %s under %s, want the client's %s under %s", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, parentID)
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range map[string]string{"http.route": "/v1/orders/{id}/cancel", "http.request.method": "POST", "http.response.status_code": "409"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
}
