package contracts

// Kafka topics. Each event topic is keyed by the stream id of the events on
// it (an order's, or a payment's: PaymentKey), so that a stream stays on one
// partition, in order. A poison topic holds the messages its service's
// consumer gave up on (see PoisonedAtKey and the keys beside it).
const (
	OrderEventsTopic   = "order.events"
	PaymentEventsTopic = "payment.events"
	OrderPoisonTopic   = "order.poison"
	PaymentPoisonTopic = "payment.poison"
)

// Topics are all the topics the services use, for whoever creates them (the
// development broker, a test cluster, a deployment).
var Topics = []string{OrderEventsTopic, OrderPoisonTopic, PaymentEventsTopic, PaymentPoisonTopic}

// PaymentKey is the key of an order's payment events on payment.events: the
// payment's stream id.
func PaymentKey(orderID string) string { return "payment-" + orderID }

// Kafka consumer groups. The order service consumes payment.events as
// OrderGroup, the payment service order.events as PaymentGroup; each
// service's poison topic is read in PoisonStoreGroup of its group.
const (
	OrderGroup   = "order"
	PaymentGroup = "payment"
)

// PoisonStoreGroup is the consumer group that copies a service's poison
// topic into its poison store, for the service's consumer group: a group of
// its own, so that the poison topic's subscription never sends the main
// one's members back into a rebalance.
func PoisonStoreGroup(group string) string { return group + "-poison-store" }

// Metadata keys, and so Kafka header names, that every forwarded event
// carries; a consumer reads the event's type and schema version from them
// (Debezium's connector in deployments/debezium sets the same headers).
const (
	EventIDKey       = "event_id"
	EventTypeKey     = "event_type"
	SchemaVersionKey = "schema_version"
	StreamIDKey      = "stream_id"
	StreamVersionKey = "stream_version"
	// CorrelationIDKey is the key Watermill's CorrelationID middleware
	// uses (middleware.CorrelationIDMetadataKey).
	CorrelationIDKey = "correlation_id"
	// TraceParentKey is the W3C trace context header.
	TraceParentKey = "traceparent"
)

// Metadata keys the poison queue adds to a poisoned message: Watermill's
// PoisonQueue middleware the first four (middleware.ReasonForPoisonedKey and
// the others), the consumer the rest, so that a person can find the message
// where it came from and requeue it there.
const (
	ReasonPoisonedKey     = "reason_poisoned"
	PoisonedTopicKey      = "topic_poisoned"
	PoisonedHandlerKey    = "handler_poisoned"
	PoisonedSubscriberKey = "subscriber_poisoned"
	PoisonedAtKey         = "poisoned_at"
	PoisonedPartitionKey  = "partition_poisoned"
	PoisonedOffsetKey     = "offset_poisoned"
	PoisonedKeyKey        = "key_poisoned"
)

// PoisonMetadataKeys are all the metadata keys the poison queue adds to a
// message; without them, the message is as it was consumed.
var PoisonMetadataKeys = []string{
	ReasonPoisonedKey, PoisonedTopicKey, PoisonedHandlerKey, PoisonedSubscriberKey,
	PoisonedAtKey, PoisonedPartitionKey, PoisonedOffsetKey, PoisonedKeyKey,
}

// Metadata keys a requeue adds to the message it sends back besides its
// original metadata, so that its consumer and anyone reading the topic can
// tell it was requeued.
const (
	// RequeuedFromKey is the poison-topic record it came back from
	// ("payment.poison 0/3").
	RequeuedFromKey = "requeued_from"
	// RequeuedAtKey is when it was requeued (RFC 3339).
	RequeuedAtKey = "requeued_at"
)
