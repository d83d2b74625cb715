// Package eventstore is an append-only event store on PostgreSQL whose events
// table is also the transactional outbox: appending an event in the command's
// transaction is all it takes to publish it, with no second write.
package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/es-outbox/reference/shared/tracing"
)

// Event is an event to be appended to a stream.
type Event struct {
	// ID identifies the event everywhere it travels (a UUID); consumers dedupe by it.
	ID string
	// Type is the stable type name, for example "order.OrderPlaced".
	Type string
	// SchemaVersion is the version of the payload's shape for Type.
	SchemaVersion int
	// Payload is the event body as JSON.
	Payload json.RawMessage
}

// Context is what the command that caused the events knew about its origin:
// stored with every event so that consumers can join the same trace.
type Context struct {
	// CorrelationID ties together everything caused by one request.
	CorrelationID string
	// Metadata holds the W3C trace context (traceparent, tracestate) and any
	// other string metadata to carry along as message headers.
	Metadata map[string]string
}

// ContextFrom is the Context to store with the events caused by the request
// or message being handled in ctx: its correlation id and trace context.
func ContextFrom(ctx context.Context) Context {
	origin := Context{CorrelationID: tracing.CorrelationID(ctx), Metadata: map[string]string{}}
	tracing.InjectTrace(ctx, origin.Metadata)
	return origin
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	Event
	Context

	// Position is where the event is in the store's commit order.
	Position Position
	// StreamID names the stream (one aggregate), StreamVersion is the event's
	// 1-based place in it.
	StreamID      string
	StreamVersion int64
	RecordedAt    time.Time
}

// Position is a place in the store's global commit order. Events are read in
// (TransactionID, GlobalPosition) order: positions are taken when a row is
// inserted, but become visible when the transaction commits, so ordering by the
// position alone would skip rows that commit late.
type Position struct {
	TransactionID  uint64
	GlobalPosition int64
}

// String shows the position as transaction id/global position.
func (p Position) String() string { return fmt.Sprintf("%d/%d", p.TransactionID, p.GlobalPosition) }

// Start is the position before the first event.
var Start = Position{}

// Before reports whether p comes before other in commit order.
func (p Position) Before(other Position) bool {
	if p.TransactionID != other.TransactionID {
		return p.TransactionID < other.TransactionID
	}
	return p.GlobalPosition < other.GlobalPosition
}
