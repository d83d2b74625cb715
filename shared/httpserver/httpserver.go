// Package httpserver is the HTTP server side both services share: JSON
// bodies and errors (written in one place, WriteError), a server with
// timeouts, a middleware that gives every request a correlation id, a server
// span and its metrics, the operational endpoints (/livez, /readyz with the
// checks it is given, /metrics), and the admin token comparison. It knows
// nothing of PostgreSQL or Kafka: the readiness checks on them are in
// package readiness.
package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/tracing"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// CorrelationIDHeader carries the correlation id in requests and responses.
const CorrelationIDHeader = "X-Correlation-ID"

// Error is an API error as sent to clients: {"error": {...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, as a JSON path ("items[0].sku").
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// BadField is a 400 naming the field at fault.
func BadField(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Message: message}
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as {"error": {...}}. Errors that are not *Error are
// logged and answered with a 500 that reveals nothing.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	WriteJSON(w, apiErr.Status, map[string]*Error{"error": apiErr})
}

// DecodeJSON reads a JSON request body into dst, strictly: it must be
// application/json, at most MaxBodyBytes, valid UTF-8, one object, with no
// unknown fields.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: "the request body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err == nil && !utf8.Valid(body) {
		// encoding/json would read invalid bytes as U+FFFD without a word:
		// the client's text would be stored as something it did not send.
		return BadField("(body)", "is not valid UTF-8, which JSON text must be")
	}
	if err == nil && bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		// encoding/json reads null into a struct as "nothing sent".
		return BadField("(body)", "must be a JSON object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(dst)
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	} else if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return nil
	}
	var (
		tooLarge  *http.MaxBytesError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		kind := typeErr.Type.Kind().String()
		if number, ok := strings.CutPrefix(typeErr.Value, "number "); ok && jsonType(kind) == "number" {
			return BadField(field, wholeNumberProblem(number))
		}
		return BadField(field, fmt.Sprintf("must be a JSON %s, not %s", jsonType(kind), typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return BadField(field, "is not a known field")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return BadField("(body)", "is not valid JSON")
	default:
		return BadField("(body)", "is not a valid JSON object: "+err.Error())
	}
}

// DecodeOptionalJSON decodes an optional request body: as DecodeJSON if
// there is one, leaving dst as it is if there is none.
func DecodeOptionalJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return DecodeJSON(w, r, dst)
}

// WholeNumber is how DecodeJSON's message for a number that does not fit an
// integer field begins, so that a port can add the field's unit.
const WholeNumber = "must be a whole number"

// wholeNumberProblem says what is wrong with a JSON number that an integer
// field refused, in a client's words: 1e3 and 9.99 are numbers, but not
// whole numbers written as such; 99999999999999999999 is too large.
func wholeNumberProblem(number string) string {
	if strings.Trim(number, "-0123456789") == "" {
		return fmt.Sprintf("%s from %d to %d, not %s", WholeNumber, math.MinInt64, math.MaxInt64, number)
	}
	if f, err := strconv.ParseFloat(number, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return fmt.Sprintf("%s written without a fraction or exponent: %.0f, not %s", WholeNumber, f, number)
	}
	return fmt.Sprintf("%s, not %s", WholeNumber, number)
}

func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "slice", kind == "array":
		return "array"
	case kind == "struct", kind == "map":
		return "object"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

// NewServer returns a server with timeouts, so slow or idle clients cannot
// hold connections forever.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

var validCorrelationID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// middleware gives each request a correlation id (the client's
// X-Correlation-ID if well-formed, else a new one, echoed in the response)
// and otelhttp's server span, which continues the client's W3C trace
// context and is named after the route that served the request ("POST
// /v1/orders"); and counts the request in m (if not nil) by route and status.
func middleware(next http.Handler, m *requestMetrics) http.Handler {
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		started := time.Now()
		next.ServeHTTP(rec, r) // r as otelhttp passed it: the ServeMux sets its Pattern, which names the span
		route := r.Pattern     // "POST /v1/orders"
		if i := strings.IndexByte(route, '/'); i >= 0 {
			// The span says the path template alone, as otelhttp would if
			// it knew the route when the span starts.
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route[i:]))
		} else {
			route = "unmatched"
		}
		m.observe(route, rec.status, time.Since(started))
	})
	// W3C trace context whatever the global propagator, as every consumer
	// of the project extracts it.
	traced := otelhttp.NewHandler(counted, "", otelhttp.WithPropagators(propagation.TraceContext{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(CorrelationIDHeader)
		if !validCorrelationID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set(CorrelationIDHeader, id)
		traced.ServeHTTP(w, r.WithContext(tracing.WithCorrelationID(r.Context(), id)))
	})
}

// Shutdown stops srv gracefully, waiting at most timeout for requests in flight.
func Shutdown(srv *http.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return srv.Shutdown(ctx)
}

// Serve serves h on ln until ctx is done, then stops taking connections and
// lets the requests in flight finish (10 s at most).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := NewServer(ln.Addr().String(), h)
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		stopped <- Shutdown(srv, 10*time.Second)
	}()
	logger.Info("serving HTTP", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return <-stopped
}
