package tracing

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Span is a finished span as the console exporter (OTEL_TRACES_EXPORTER=console)
// writes it, one JSON object per line.
type Span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	SpanKind    int
	StartTime   time.Time
	EndTime     time.Time
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Resource []struct {
		Key   string
		Value struct{ Value any }
	}
}

// Attr returns the value of one of the span's attributes as text, or "".
func (s Span) Attr(key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return fmt.Sprint(a.Value.Value)
		}
	}
	return ""
}

// Service is the name of the service that recorded the span.
func (s Span) Service() string {
	for _, a := range s.Resource {
		if a.Key == "service.name" {
			return fmt.Sprint(a.Value.Value)
		}
	}
	return "?"
}

// ReadSpans reads the spans among the lines of r; other lines (logs) are skipped.
func ReadSpans(r io.Reader) ([]Span, error) {
	var spans []Span
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"SpanContext"`) {
			continue
		}
		var s Span
		if err := json.Unmarshal(line, &s); err != nil {
			return nil, fmt.Errorf("span: %w", err)
		}
		spans = append(spans, s)
	}
	return spans, sc.Err()
}

// Trace returns the spans of one trace.
func Trace(spans []Span, traceID string) []Span {
	var out []Span
	for _, s := range spans {
		if s.SpanContext.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Tree renders one trace's spans as an indented tree: service, span name,
// duration; children in start order.
func Tree(spans []Span) string {
	children := map[string][]Span{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID] = true
	}
	var roots []Span
	for _, s := range spans {
		if ids[s.Parent.SpanID] {
			children[s.Parent.SpanID] = append(children[s.Parent.SpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(list []Span, depth int)
	walk = func(list []Span, depth int) {
		sort.Slice(list, func(i, j int) bool { return list[i].StartTime.Before(list[j].StartTime) })
		for _, s := range list {
			fmt.Fprintf(&b, "%-9s %s%s  %s\n", s.Service(), strings.Repeat("  ", depth), s.Name,
				s.EndTime.Sub(s.StartTime).Round(10*time.Microsecond))
			walk(children[s.SpanContext.SpanID], depth+1)
		}
	}
	walk(roots, 0)
	return b.String()
}
