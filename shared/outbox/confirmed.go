package outbox

import (
	"strconv"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"

	"github.com/es-outbox/reference/shared/eventstore"
)

// confirmedPosition is the position up to which Kafka has acknowledged every
// event, with nothing failed or skipped before it. It is the only position
// the forwarder ever stores as its offset.
type confirmedPosition struct {
	mu sync.Mutex
	p  eventstore.Position
}

// advance moves the position forward to p; it never moves back.
func (c *confirmedPosition) advance(p eventstore.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.Before(p) {
		c.p = p
	}
}

func (c *confirmedPosition) get() eventstore.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// confirmedOffsets is the offsets adapter of the forwarder's SQL subscriber.
// The subscriber stores the offset of the last batch acknowledged to the
// router; the forwarder acknowledges a batch Kafka refused part of too, so
// that it is read again from the previous position. So whatever row the
// subscriber names, this adapter stores the confirmed position instead: a
// failed send, an ack deadline or a stop can never store an offset past an
// event Kafka has not acknowledged. The update only moves the offset
// forward, so a forwarder in the same group with an older confirmed
// position never moves it back.
type confirmedOffsets struct {
	wsql.DefaultPostgreSQLOffsetsAdapter
	confirmed *confirmedPosition
}

func newConfirmedOffsets(confirmed *confirmedPosition) confirmedOffsets {
	return confirmedOffsets{DefaultPostgreSQLOffsetsAdapter: OffsetsAdapter, confirmed: confirmed}
}

// NextOffsetQuery reads the group's offset without Watermill's row lock
// (FOR UPDATE): the group's lock (see groupLocked) already lets one
// forwarder at a time read, and a row lock would give the read transaction
// an id for as long as its batch waits for Kafka.
func (a confirmedOffsets) NextOffsetQuery(topic, consumerGroup string) wsql.Query {
	return wsql.Query{
		Query: `SELECT offset_acked, last_processed_transaction_id FROM ` + a.MessagesOffsetsTable(topic) + `
			WHERE consumer_group = $1`,
		Args: []any{consumerGroup},
	}
}

// AckMessageQuery stores the confirmed position, not row's.
func (a confirmedOffsets) AckMessageQuery(topic string, _ wsql.Row, consumerGroup string) wsql.Query {
	p := a.confirmed.get()
	return wsql.Query{
		Query: `UPDATE ` + a.MessagesOffsetsTable(topic) + `
			SET offset_acked = $1, last_processed_transaction_id = $2::text::xid8
			WHERE consumer_group = $3 AND (last_processed_transaction_id, offset_acked) < ($2::text::xid8, $1)`,
		Args: []any{p.GlobalPosition, strconv.FormatUint(p.TransactionID, 10), consumerGroup},
	}
}
