package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnknownEvent means an event's type, or its schema version, is newer
// than this code: a newer version of the service wrote it (during a rolling
// deploy, while old replicas still run). A reader that looks at some events
// only passes it over; an aggregate, which needs every event of its stream,
// cannot be loaded until the newer code runs.
var ErrUnknownEvent = errors.New("unknown event type or schema version (written by a newer version?)")

// UpcastFunc turns a payload stored at an older schema version of its event
// type into the current shape, and says which version it now has.
type UpcastFunc func(eventType string, version int, payload []byte) ([]byte, int, error)

// Decoder turns an aggregate's stored events, in whatever schema version
// they were stored, into its domain events E: one table instead of a switch
// per repository, and upcasting in one place for every reader.
type Decoder[E any] struct {
	upcast UpcastFunc
	kinds  map[string]Kind[E]
}

// Kind is how one event type is read: by its type name, at its current
// schema version.
type Kind[E any] struct {
	name    string
	version int
	decode  func(payload []byte) (E, error)
}

// As is the Kind of T (one of the E), with the type name and schema version
// T itself states, decoded from its JSON payload.
func As[T DomainEvent, E any]() Kind[E] {
	var zero T
	if _, ok := any(zero).(E); !ok {
		panic(fmt.Sprintf("eventstore: %T is not one of the events the decoder returns", zero))
	}
	return Kind[E]{name: zero.EventType(), version: zero.SchemaVersion(), decode: func(payload []byte) (E, error) {
		var v T
		err := json.Unmarshal(payload, &v)
		return any(v).(E), err
	}}
}

// NewDecoder returns a decoder of the given kinds that first upcasts every
// payload with upcast.
func NewDecoder[E any](upcast UpcastFunc, kinds ...Kind[E]) *Decoder[E] {
	d := &Decoder[E]{upcast: upcast, kinds: map[string]Kind[E]{}}
	for _, k := range kinds {
		d.kinds[k.name] = k
	}
	return d
}

// Knows says whether e is of a type this decoder knows, at a schema version
// it can read (the current one or an older one): not from a newer version.
func (d *Decoder[E]) Knows(e RecordedEvent) bool {
	k, ok := d.kinds[e.Type]
	return ok && e.SchemaVersion <= k.version
}

// Decode returns the domain event stored as e. An event this decoder does
// not know (see Knows) is an ErrUnknownEvent; any other failure to read it
// is an error as well.
func (d *Decoder[E]) Decode(e RecordedEvent) (E, error) {
	var zero E
	if !d.Knows(e) {
		return zero, fmt.Errorf("event %s: %w: %s v%d", e.ID, ErrUnknownEvent, e.Type, e.SchemaVersion)
	}
	payload, version, err := d.upcast(e.Type, e.SchemaVersion, e.Payload)
	if err != nil {
		return zero, fmt.Errorf("event %s: %w", e.ID, err)
	}
	k := d.kinds[e.Type]
	if k.version != version {
		return zero, fmt.Errorf("event %s: no upcaster takes %s v%d to v%d", e.ID, e.Type, version, k.version)
	}
	v, err := k.decode(payload)
	if err != nil {
		return zero, fmt.Errorf("eventstore: decode event %s (%s v%d): %w", e.ID, e.Type, version, err)
	}
	return v, nil
}

// DecodeAll decodes a stream's events, oldest first.
func (d *Decoder[E]) DecodeAll(recorded []RecordedEvent) ([]E, error) {
	events := make([]E, len(recorded))
	for i, e := range recorded {
		var err error
		if events[i], err = d.Decode(e); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// Load reads a stream's events (Load: within work of a GroupCommit, with
// the other loads of the group) and decodes them, oldest first: what an
// aggregate is folded from. A stream with no events is ErrStreamNotFound.
func (d *Decoder[E]) Load(ctx context.Context, db DB, streamID string) ([]E, error) {
	recorded, err := Load(ctx, db, streamID)
	if err != nil {
		return nil, err
	}
	return d.DecodeAll(recorded)
}
