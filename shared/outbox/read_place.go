package outbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/eventstore"
)

// readPlaceKey is the metadata key under which EventsSchemaAdapter tells the
// forwarder where an event was read. Metadata, because the SQL subscriber
// replaces a message's context before handing it over; the forwarder drops
// the key before the event goes to Kafka.
const readPlaceKey = "_outbox_read_place"

// readPlace is where an event was read: its 1-based place in the batch one
// SQL query returned, that batch's size, and its position in the event store.
// The forwarder sends a batch without waiting and settles it (waits for Kafka
// to acknowledge every event) at its last event.
type readPlace struct {
	Place, Size int
	Position    eventstore.Position
}

func (r readPlace) first() bool { return r.Place == 1 }
func (r readPlace) last() bool  { return r.Place == r.Size }

// setReadPlace writes r as "place size transaction_id global_position";
// strconv rather than fmt, since this runs for every event forwarded.
func setReadPlace(msg *message.Message, r readPlace) {
	b := make([]byte, 0, 48)
	b = strconv.AppendInt(b, int64(r.Place), 10)
	b = strconv.AppendInt(append(b, ' '), int64(r.Size), 10)
	b = strconv.AppendUint(append(b, ' '), r.Position.TransactionID, 10)
	b = strconv.AppendInt(append(b, ' '), r.Position.GlobalPosition, 10)
	msg.Metadata.Set(readPlaceKey, string(b))
}

func readPlaceOf(msg *message.Message) (readPlace, error) {
	value := msg.Metadata.Get(readPlaceKey)
	invalid := func() error {
		return fmt.Errorf("outbox: event %s has no valid read place (%q); was it read by EventsSchemaAdapter?", msg.UUID, value)
	}
	// strings.Cut rather than strings.Fields: no slice per event.
	place, rest, ok1 := strings.Cut(value, " ")
	size, rest, ok2 := strings.Cut(rest, " ")
	txID, pos, ok3 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !ok3 {
		return readPlace{}, invalid()
	}
	var r readPlace
	var errs [4]error
	r.Place, errs[0] = strconv.Atoi(place)
	r.Size, errs[1] = strconv.Atoi(size)
	r.Position.TransactionID, errs[2] = strconv.ParseUint(txID, 10, 64)
	r.Position.GlobalPosition, errs[3] = strconv.ParseInt(pos, 10, 64)
	if errors.Join(errs[:]...) != nil || r.Place < 1 || r.Place > r.Size {
		return readPlace{}, invalid()
	}
	return r, nil
}
