package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/messaging"
)

// Route sends every event whose type starts with EventTypePrefix to Topic.
type Route struct {
	EventTypePrefix string
	Topic           string
}

// Destination is where one message goes: its Kafka topic and partition key.
type Destination struct {
	Topic string
	Key   string
}

type destinationKey struct{}

// DestinationFromContext returns the destination the routing middleware chose.
func DestinationFromContext(ctx context.Context) (Destination, bool) {
	d, ok := ctx.Value(destinationKey{}).(Destination)
	return d, ok
}

// Routing is the middleware that picks each event's Kafka topic from its type
// (the first matching route) and its partition key from its stream id, so all
// events of one aggregate land on one partition, in order. An event no route
// matches is an error: the forwarder stops on it rather than skip it.
func Routing(routes ...Route) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			eventType := msg.Metadata.Get(messaging.EventTypeKey)
			for _, r := range routes {
				if strings.HasPrefix(eventType, r.EventTypePrefix) {
					d := Destination{Topic: r.Topic, Key: msg.Metadata.Get(messaging.StreamIDKey)}
					msg.SetContext(context.WithValue(msg.Context(), destinationKey{}, d))
					return h(msg)
				}
			}
			return nil, fmt.Errorf("outbox: no route for event %s of type %q", msg.UUID, eventType)
		}
	}
}
