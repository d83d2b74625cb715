package outbox

import (
	"context"
	"database/sql"
	"fmt"
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

// confirmedOffsets is the offsets adapter of the forwarder's SQL subscriber:
// it keeps the consumer group's position in the event store's table of
// reader positions (eventstore.PositionsTable), the one the projections use
// too, under the group's name.
//
// The subscriber stores the offset of the last batch acknowledged to the
// router; the forwarder acknowledges a batch Kafka refused part of too, so
// that it is read again from the previous position. So whatever row the
// subscriber names, this adapter stores the confirmed position instead: a
// failed send, an ack deadline or a stop can never store an offset past an
// event Kafka has not acknowledged. The update only moves the position
// forward, so a forwarder in the same group with an older confirmed
// position never moves it back.
type confirmedOffsets struct {
	confirmed *confirmedPosition
}

func newConfirmedOffsets(confirmed *confirmedPosition) confirmedOffsets {
	return confirmedOffsets{confirmed: confirmed}
}

// BeforeSubscribingQueries returns nothing: the forwarder creates the
// group's position itself before it subscribes (createGroupPosition). The
// subscriber would run these queries in a transaction of groupLocked,
// which waits for the group's lock: a replica started while another one
// holds it (waiting for Kafka, say) would wait in Subscribe, before its
// handler runs, and its stop would then time out closing the router.
func (confirmedOffsets) BeforeSubscribingQueries(string, string) []wsql.Query { return nil }

// createGroupPosition creates the group's position at the start if it has
// none: NextOffsetQuery and AckMessageQuery need its row.
func createGroupPosition(ctx context.Context, db *sql.DB, group string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO `+eventstore.PositionsTable+` (reader) VALUES ($1) ON CONFLICT DO NOTHING`, group)
	if err != nil {
		return fmt.Errorf("outbox: create consumer group %s's position: %w", group, err)
	}
	return nil
}

// NextOffsetQuery reads the group's position under the names the schema
// adapter's query uses. It takes no row lock (Watermill's default is FOR
// UPDATE): the group's lock (see groupLocked) already lets one forwarder of
// the group read a batch at a time, and a row lock would give the read
// transaction an id for as long as its batch waits for Kafka.
func (confirmedOffsets) NextOffsetQuery(_, consumerGroup string) wsql.Query {
	return wsql.Query{
		Query: `SELECT global_position AS offset_acked, transaction_id AS last_processed_transaction_id
			FROM ` + eventstore.PositionsTable + ` WHERE reader = $1`,
		Args: []any{consumerGroup},
	}
}

// AckMessageQuery stores the confirmed position, not row's.
func (a confirmedOffsets) AckMessageQuery(_ string, _ wsql.Row, consumerGroup string) wsql.Query {
	p := a.confirmed.get()
	return wsql.Query{
		Query: `UPDATE ` + eventstore.PositionsTable + `
			SET global_position = $1, transaction_id = $2::text::xid8, updated_at = now()
			WHERE reader = $3 AND (transaction_id, global_position) < ($2::text::xid8, $1)`,
		Args: []any{p.GlobalPosition, strconv.FormatUint(p.TransactionID, 10), consumerGroup},
	}
}

// ConsumedMessageQuery is not needed: the group's lock orders the forwarders.
func (confirmedOffsets) ConsumedMessageQuery(string, wsql.Row, string, []byte) wsql.Query {
	return wsql.Query{}
}

// SchemaInitializingQueries returns nothing: the table comes from the event
// store's migrations.
func (confirmedOffsets) SchemaInitializingQueries(string) []wsql.Query { return nil }
