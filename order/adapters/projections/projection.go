// Package projections keeps the order service's read models: tables fed from
// the event store in commit order, each with a checkpoint moved in the same
// transaction as its rows, and rebuilt from the first event by Replay.
package projections

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Change is what a batch's events did to one order: the order before the
// first of them (nil if it placed the order) and after the last (Event).
// Read models apply one Change per order and batch, not one per event.
type Change struct {
	Event  eventstore.RecordedEvent
	Before *order.Order
	After  *order.Order
	// Version is the order's stream version after the change, and
	// VersionBefore before it. They are the stream's, not Before's and
	// After's, which count only the events this code knows.
	Version, VersionBefore int64
}

// Projection is a read model kept in one table.
type Projection struct {
	// Name identifies the projection on the command line, in its checkpoint
	// and in logs; it is also the name of its table.
	Name string
	// apply queues onto b the statements that apply a batch's changes, one
	// per order, to table (quoted): a few statements per batch, each
	// writing many rows. Statements that must change a known number of rows
	// check it, so that an event applied twice or out of order fails the
	// batch instead of going unseen.
	apply func(b *pgx.Batch, table string, changes []Change)
}

// All are the order service's projections.
var All = []Projection{OrderSummaries, OrderDailyStats}

// Named returns the projection called name, or an error listing the known
// ones.
func Named(name string) (Projection, error) {
	for _, p := range All {
		if p.Name == name {
			return p, nil
		}
	}
	return Projection{}, fmt.Errorf("unknown projection %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names are the names of All.
func Names() []string {
	names := make([]string, len(All))
	for i, p := range All {
		names[i] = p.Name
	}
	return names
}
