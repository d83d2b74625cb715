package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// otlpExporter sends spans to an OpenTelemetry collector (or Jaeger, Tempo,
// anything that takes OTLP) over OTLP/HTTP with the JSON encoding the OTLP
// specification defines, to port 4318's /v1/traces.
//
// Why not the otlptracehttp exporter of opentelemetry-go: it imports gRPC
// (its config package and the generated collector package do;
// open-telemetry/opentelemetry-go#2579), which puts gRPC, protobuf and, through
// gRPC's go.mod, Google Cloud modules into every service's module graph, and
// was a third of what a service compiles. A span is a small JSON document;
// encoding it is this file.
type otlpExporter struct {
	endpoint string
	headers  http.Header
	client   *http.Client
}

// newOTLPExporter reads the standard OTEL_EXPORTER_OTLP_* variables (the
// TRACES_ one of each first): ENDPOINT, HEADERS, TIMEOUT and PROTOCOL, which
// must be http/json if it is set.
func newOTLPExporter() (*otlpExporter, error) {
	if p := otlpEnv("PROTOCOL"); p != "" && p != "http/json" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: this service exports OTLP over HTTP in JSON only; set it to http/json (every OTLP/HTTP receiver, on port 4318, takes it)", p)
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		base := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		if base == "" {
			base = "http://localhost:4318"
		}
		endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: want an http:// or https:// address", endpoint)
	}
	headers := http.Header{"Content-Type": {"application/json"}}
	if list := otlpEnv("HEADERS"); list != "" {
		for _, pair := range strings.Split(list, ",") {
			name, value, ok := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			value, err := url.QueryUnescape(strings.TrimSpace(value))
			if !ok || name == "" || err != nil {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %q is not name=value", pair)
			}
			headers.Set(name, value)
		}
	}
	timeout := 10 * time.Second
	if ms := otlpEnv("TIMEOUT"); ms != "" {
		n, err := strconv.Atoi(ms)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT=%s: want milliseconds, above 0", ms)
		}
		timeout = time.Duration(n) * time.Millisecond
	}
	return &otlpExporter{endpoint: endpoint, headers: headers, client: &http.Client{Timeout: timeout}}, nil
}

// otlpEnv is OTEL_EXPORTER_OTLP_TRACES_<name>, or else OTEL_EXPORTER_OTLP_<name>.
func otlpEnv(name string) string {
	if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_" + name)
}

// ExportSpans posts one request with spans. A collector that is busy or
// restarting (429, 502, 503, 504, or no connection) gets two more tries,
// one and two seconds apart, within ctx; after that the spans are dropped
// and the error goes to OpenTelemetry's error handler, as with any exporter.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	body, err := json.Marshal(otlpRequest(spans))
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		retry, err := e.post(ctx, body)
		if err == nil || !retry || attempt == 3 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

func (e *otlpExporter) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header = e.headers.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("otlp: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		return true, fmt.Errorf("otlp: %s: %s", resp.Status, reply)
	default:
		return false, fmt.Errorf("otlp: %s: %s", resp.Status, reply)
	}
}

// Shutdown has nothing to release: a request in flight ends with its context.
func (e *otlpExporter) Shutdown(context.Context) error { return nil }

// The OTLP/JSON shapes: ExportTraceServiceRequest and what it contains, with
// the specification's JSON rules: lowerCamelCase names, ids in hex, 64-bit
// integers as strings, enums as numbers.
type (
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
		SchemaURL  string           `json:"schemaUrl,omitempty"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope     otlpScope  `json:"scope"`
		Spans     []otlpSpan `json:"spans"`
		SchemaURL string     `json:"schemaUrl,omitempty"`
	}
	otlpScope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	otlpSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		TraceState        string         `json:"traceState,omitempty"`
		ParentSpanID      string         `json:"parentSpanId,omitempty"`
		Flags             uint32         `json:"flags,omitempty"`
		Name              string         `json:"name"`
		Kind              int            `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []otlpKeyValue `json:"attributes,omitempty"`
		DroppedAttributes int            `json:"droppedAttributesCount,omitempty"`
		Events            []otlpEvent    `json:"events,omitempty"`
		Links             []otlpLink     `json:"links,omitempty"`
		Status            otlpStatus     `json:"status"`
	}
	otlpEvent struct {
		TimeUnixNano string         `json:"timeUnixNano"`
		Name         string         `json:"name"`
		Attributes   []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpLink struct {
		TraceID    string         `json:"traceId"`
		SpanID     string         `json:"spanId"`
		TraceState string         `json:"traceState,omitempty"`
		Attributes []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpStatus struct {
		Message string `json:"message,omitempty"`
		Code    int    `json:"code,omitempty"`
	}
	otlpKeyValue struct {
		Key   string    `json:"key"`
		Value otlpValue `json:"value"`
	}
	otlpValue struct {
		String *string          `json:"stringValue,omitempty"`
		Bool   *bool            `json:"boolValue,omitempty"`
		Int    *string          `json:"intValue,omitempty"`
		Double *float64         `json:"doubleValue,omitempty"`
		Array  *otlpArrayValues `json:"arrayValue,omitempty"`
	}
	otlpArrayValues struct {
		Values []otlpValue `json:"values"`
	}
)

// otlpRequest groups spans by resource and then by instrumentation scope, in
// the order they come.
func otlpRequest(spans []sdktrace.ReadOnlySpan) map[string][]otlpResourceSpans {
	var out []otlpResourceSpans
	resources := map[attribute.Distinct]int{}
	scopes := map[attribute.Distinct]map[string]int{}
	for _, s := range spans {
		key := s.Resource().Equivalent()
		r, ok := resources[key]
		if !ok {
			r = len(out)
			resources[key] = r
			scopes[key] = map[string]int{}
			out = append(out, otlpResourceSpans{
				Resource:  otlpResource{Attributes: otlpAttributes(s.Resource().Attributes())},
				SchemaURL: s.Resource().SchemaURL(),
			})
		}
		scope := s.InstrumentationScope()
		scopeKey := scope.Name + "\x00" + scope.Version + "\x00" + scope.SchemaURL
		i, ok := scopes[key][scopeKey]
		if !ok {
			i = len(out[r].ScopeSpans)
			scopes[key][scopeKey] = i
			out[r].ScopeSpans = append(out[r].ScopeSpans, otlpScopeSpans{
				Scope:     otlpScope{Name: scope.Name, Version: scope.Version},
				SchemaURL: scope.SchemaURL,
			})
		}
		out[r].ScopeSpans[i].Spans = append(out[r].ScopeSpans[i].Spans, otlpSpanOf(s))
	}
	return map[string][]otlpResourceSpans{"resourceSpans": out}
}

func otlpSpanOf(s sdktrace.ReadOnlySpan) otlpSpan {
	sc := s.SpanContext()
	span := otlpSpan{
		TraceID:           sc.TraceID().String(),
		SpanID:            sc.SpanID().String(),
		TraceState:        sc.TraceState().String(),
		Flags:             uint32(sc.TraceFlags()),
		Name:              s.Name(),
		Kind:              int(s.SpanKind()), // the same numbers as OTLP's SpanKind
		StartTimeUnixNano: otlpTime(s.StartTime()),
		EndTimeUnixNano:   otlpTime(s.EndTime()),
		Attributes:        otlpAttributes(s.Attributes()),
		DroppedAttributes: s.DroppedAttributes(),
		Status:            otlpStatus{Message: s.Status().Description},
	}
	if parent := s.Parent(); parent.SpanID().IsValid() {
		span.ParentSpanID = parent.SpanID().String()
	}
	switch s.Status().Code {
	case codes.Ok:
		span.Status.Code = 1
	case codes.Error:
		span.Status.Code = 2
	}
	for _, e := range s.Events() {
		span.Events = append(span.Events, otlpEvent{TimeUnixNano: otlpTime(e.Time), Name: e.Name, Attributes: otlpAttributes(e.Attributes)})
	}
	for _, l := range s.Links() {
		span.Links = append(span.Links, otlpLink{
			TraceID:    l.SpanContext.TraceID().String(),
			SpanID:     l.SpanContext.SpanID().String(),
			TraceState: l.SpanContext.TraceState().String(),
			Attributes: otlpAttributes(l.Attributes),
		})
	}
	return span
}

func otlpTime(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func otlpAttributes(attrs []attribute.KeyValue) []otlpKeyValue {
	out := make([]otlpKeyValue, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, otlpKeyValue{Key: string(a.Key), Value: otlpValueOf(a.Value)})
	}
	return out
}

func otlpValueOf(v attribute.Value) otlpValue {
	switch v.Type() {
	case attribute.BOOL:
		b := v.AsBool()
		return otlpValue{Bool: &b}
	case attribute.INT64:
		i := strconv.FormatInt(v.AsInt64(), 10)
		return otlpValue{Int: &i}
	case attribute.FLOAT64:
		f := v.AsFloat64()
		return otlpValue{Double: &f}
	case attribute.BOOLSLICE:
		return otlpArray(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return otlpArray(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return otlpArray(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return otlpArray(v.AsStringSlice(), attribute.StringValue)
	default:
		s := v.Emit()
		return otlpValue{String: &s}
	}
}

func otlpArray[T any](items []T, value func(T) attribute.Value) otlpValue {
	values := make([]otlpValue, 0, len(items))
	for _, item := range items {
		values = append(values, otlpValueOf(value(item)))
	}
	return otlpValue{Array: &otlpArrayValues{Values: values}}
}
