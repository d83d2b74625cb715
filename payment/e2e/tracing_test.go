package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/tracing"
)

// One order makes one trace across every hop: the HTTP request, the
// command and its append, the forward to Kafka, the payment handler, the
// gateway, and the outcome's way back into the order. Spans are exported by
// the console exporter, as a user would with OTEL_TRACES_EXPORTER=console.
func TestOneTracePerOrderAcrossBothServices(t *testing.T) {
	s := start(t, "OTEL_TRACES_EXPORTER=console")
	id := s.place(t, 1_000)
	s.waitForStatus(t, id, "paid")
	s.order.Stop(t, 20*time.Second) // graceful stops flush the spans
	s.payment.Stop(t, 20*time.Second)

	spans, err := tracing.ReadSpans(strings.NewReader(s.order.Output() + s.payment.Output()))
	if err != nil {
		t.Fatal(err)
	}
	var traceID string
	for _, sp := range spans {
		if sp.Name == "PlaceOrder" && sp.Attr("order.id") == id {
			traceID = sp.SpanContext.TraceID
		}
	}
	if traceID == "" {
		t.Fatalf("no PlaceOrder span for order %s among %d spans", id, len(spans))
	}
	trace := tracing.Trace(spans, traceID)
	t.Logf("trace %s:\n%s", traceID, tracing.Tree(trace))

	byID := map[string]tracing.Span{}
	for _, sp := range trace {
		byID[sp.SpanContext.SpanID] = sp
	}
	// parentOf finds the first span named child (in service) and returns its parent's name.
	parentOf := func(service, child string) string {
		for _, sp := range trace {
			if sp.Name == child && sp.Service() == service {
				return byID[sp.Parent.SpanID].Name
			}
		}
		t.Errorf("the trace has no %s span %q", service, child)
		return ""
	}
	hops := []struct{ service, span, parent string }{
		{"order", "PlaceOrder", "POST /v1/orders"},
		{"order", "append events", "PlaceOrder"},
		{"order", "send order.events", "PlaceOrder"},
		{"payment", "process order.events", "send order.events"},
		{"payment", "ChargeOrder", "process order.events"},
		{"payment", "gateway charge", "ChargeOrder"},
		{"payment", "send payment.events", "ChargeOrder"},
		{"order", "process payment.events", "send payment.events"},
		{"order", "RecordPaymentSucceeded", "process payment.events"},
	}
	for _, h := range hops {
		if got := parentOf(h.service, h.span); got != h.parent {
			t.Errorf("%s span %q has parent %q, want %q", h.service, h.span, got, h.parent)
		}
	}
	for _, sp := range trace {
		if sp.Name == "process order.events" && (sp.Attr("messaging.system") != "kafka" ||
			sp.Attr("messaging.consumer.group.name") != "payment" || sp.Attr("messaging.kafka.message.key") != "order-"+id ||
			sp.Attr("messaging.destination.partition.id") == "" || sp.Attr("messaging.message.id") == "") {
			t.Errorf("consumer span lacks the messaging attributes: %+v", sp.Attributes)
		}
	}
}
