// Package ports feeds the payment application from Kafka: a Watermill router
// on order.events with recoverer, poison queue, retry and correlation-id
// middleware.
package ports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/messaging"
)

// Topics and consumer group of the payment router.
const (
	OrderEventsTopic = "order.events"
	PoisonTopic      = "payment.poison"
	ConsumerGroup    = "payment"
)

// Metadata the poison queue adds to a poisoned message, besides Watermill's
// reason_poisoned, topic_poisoned, handler_poisoned and subscriber_poisoned.
const (
	PoisonedAtKey        = "poisoned_at"
	PoisonedPartitionKey = "partition_poisoned"
	PoisonedOffsetKey    = "offset_poisoned"
	PoisonedKeyKey       = "key_poisoned"
)

// RouterConfig configures the payment router.
type RouterConfig struct {
	Brokers []string
	// MaxRetries is how often a failing message is retried before it goes
	// to the poison queue.
	MaxRetries int
	// RetryInterval is the first wait between retries; it doubles each time.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Stats counts what the router did, for tests and metrics.
type Stats struct {
	Handled  atomic.Int64 // messages acked without error, skipped ones included
	Retries  atomic.Int64
	Poisoned atomic.Int64
}

// Router is the payment service's Kafka consumer.
type Router struct {
	router  *message.Router
	closers []func() error
	Stats   *Stats
}

// NewRouter subscribes application to order.events.
func NewRouter(cfg RouterConfig, application *app.Application) (*Router, error) {
	wlog := logs.Watermill(cfg.Logger.With("component", "router"))
	sub, err := kafka.NewSubscriber(cfg.Brokers, ConsumerGroup, wlog)
	if err != nil {
		return nil, err
	}
	poisonPub, err := kafka.NewPublisher(cfg.Brokers, "payment-poison", originalKey, wlog)
	if err != nil {
		sub.Close()
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, wlog)
	if err != nil {
		return nil, err
	}
	stats := &Stats{}
	poison, err := middleware.PoisonQueue(poisonPublisher{poisonPub, stats}, PoisonTopic)
	if err != nil {
		return nil, err
	}
	// The first middleware added runs outermost: a message is retried before
	// it is poisoned, never poisoned on its first failure.
	router.AddMiddleware(
		middleware.Recoverer,
		poison,
		middleware.Retry{
			MaxRetries:      cfg.MaxRetries,
			InitialInterval: cfg.RetryInterval,
			MaxInterval:     10 * cfg.RetryInterval,
			Multiplier:      2,
			OnRetryHook:     func(int, time.Duration) { stats.Retries.Add(1) },
			Logger:          wlog,
		}.Middleware,
		middleware.CorrelationID,
	)
	h := handler{app: application, logger: cfg.Logger, stats: stats}
	router.AddNoPublisherHandler("charge_order", OrderEventsTopic, sub, h.handle)
	return &Router{router: router, closers: []func() error{poisonPub.Close}, Stats: stats}, nil
}

// Run consumes until ctx is done, then drains the handler and closes.
func (r *Router) Run(ctx context.Context) error {
	err := r.router.Run(ctx)
	for _, c := range r.closers {
		err = errors.Join(err, c())
	}
	return err
}

// Running is closed once the router consumes.
func (r *Router) Running() chan struct{} { return r.router.Running() }

type handler struct {
	app    *app.Application
	logger *slog.Logger
	stats  *Stats
}

var tracer = otel.Tracer("github.com/es-outbox/reference/payment/ports")

// handle charges the order of an OrderPlaced event and skips other events.
// An error sends the message through retries and then to the poison queue.
func (h handler) handle(msg *message.Message) error {
	ctx := messaging.ExtractTrace(msg.Context(), msg)
	ctx = messaging.WithCorrelationID(ctx, middleware.MessageCorrelationID(msg))
	ctx, span := tracer.Start(ctx, "order.events process", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()

	req, ok, err := decodeOrderPlaced(msg)
	if err == nil && ok {
		err = h.app.ChargeOrder(ctx, req)
	}
	if err != nil {
		h.logger.WarnContext(ctx, "handling message failed", "message_id", msg.UUID, "err", err,
			"event_type", msg.Metadata.Get(messaging.EventTypeKey), "correlation_id", middleware.MessageCorrelationID(msg))
		return err
	}
	h.stats.Handled.Add(1)
	return nil
}

// decodeOrderPlaced returns the payment request in an OrderPlaced event, or
// ok=false for events the payment service does not handle.
func decodeOrderPlaced(msg *message.Message) (req payment.Request, ok bool, err error) {
	eventType := msg.Metadata.Get(messaging.EventTypeKey)
	if eventType == "" {
		return req, false, errors.New("message has no event_type header")
	}
	if eventType != contracts.OrderPlacedType {
		return req, false, nil
	}
	version := msg.Metadata.Get(messaging.SchemaVersionKey)
	if version != strconv.Itoa(contracts.OrderPlacedVersion) {
		return req, false, fmt.Errorf("%s schema version %q is not supported (want %d)", eventType, version, contracts.OrderPlacedVersion)
	}
	var placed contracts.OrderPlaced
	if err := json.Unmarshal(msg.Payload, &placed); err != nil {
		return req, false, fmt.Errorf("%s payload is not valid: %w", eventType, err)
	}
	req = payment.Request{OrderID: placed.OrderID, Amount: placed.Total, Currency: placed.Currency}
	return req, true, req.Validate()
}

// poisonPublisher adds where a poisoned message came from (partition,
// offset, key) and when it was poisoned, so a person can find and requeue it.
type poisonPublisher struct {
	message.Publisher
	stats *Stats
}

func (p poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		ctx := msg.Context()
		if partition, ok := wkafka.MessagePartitionFromCtx(ctx); ok {
			msg.Metadata.Set(PoisonedPartitionKey, strconv.Itoa(int(partition)))
		}
		if offset, ok := wkafka.MessagePartitionOffsetFromCtx(ctx); ok {
			msg.Metadata.Set(PoisonedOffsetKey, strconv.FormatInt(offset, 10))
		}
		if key, ok := wkafka.MessageKeyFromCtx(ctx); ok {
			msg.Metadata.Set(PoisonedKeyKey, string(key))
		}
		msg.Metadata.Set(PoisonedAtKey, time.Now().UTC().Format(time.RFC3339Nano))
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.stats.Poisoned.Add(int64(len(msgs)))
	return nil
}

// originalKey keeps a poisoned message's original Kafka key.
func originalKey(msg *message.Message) string {
	key, _ := wkafka.MessageKeyFromCtx(msg.Context())
	return string(key)
}
