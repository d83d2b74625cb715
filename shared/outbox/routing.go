package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Route sends every event whose type starts with EventTypePrefix to Topic.
type Route struct {
	EventTypePrefix string
	Topic           string
}

// Destination is where one event goes: its Kafka topic and partition key.
type Destination struct {
	Topic string
	Key   string
}

type routedKey struct{}

// routedEvents returns the events of a batch message, each with the
// destination the routing middleware chose for it.
func routedEvents(ctx context.Context) ([]forwardedEvent, bool) {
	events, ok := ctx.Value(routedKey{}).([]forwardedEvent)
	return events, ok
}

// Routing is the middleware that decodes a batch message (one per read of
// the events table) into its events and picks each event's Kafka topic from
// its type (the first matching route) and its partition key from its stream
// id, so all events of one aggregate land on one partition, in order. An
// event no route matches is an error for its whole batch, before any of it
// is sent: the forwarder stops on it rather than skip it.
func Routing(routes ...Route) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(batch *message.Message) ([]*message.Message, error) {
			events, err := routeBatch(routes, batch)
			if err != nil {
				return nil, err
			}
			batch.SetContext(context.WithValue(batch.Context(), routedKey{}, events))
			return h(batch)
		}
	}
}

// routeBatch decodes a batch message into its events, each with its
// destination: what Routing does, and the forwarder with the batches it
// reads ahead (see Forwarder.forward).
func routeBatch(routes []Route, batch *message.Message) ([]forwardedEvent, error) {
	events, err := batchEvents(batch)
	if err != nil {
		return nil, err
	}
	for i := range events {
		e := &events[i]
		if e.destination, err = route(routes, e.id, e.eventType, e.streamID); err != nil {
			return nil, err
		}
		e.record.Topic = e.destination.Topic
	}
	return events, nil
}

func route(routes []Route, id, eventType, streamID string) (Destination, error) {
	for _, r := range routes {
		if strings.HasPrefix(eventType, r.EventTypePrefix) {
			return Destination{Topic: r.Topic, Key: streamID}, nil
		}
	}
	return Destination{}, fmt.Errorf("outbox: no route for event %s of type %q", id, eventType)
}
