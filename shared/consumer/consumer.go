// Package consumer builds the Watermill routers that consume Kafka topics in
// both services, with the middleware every consumer needs, in the order that
// matters: recoverer, poison queue, retry with backoff, correlation id. The
// first middleware added runs outermost, so a failing message is retried
// before it is poisoned, never poisoned on its first failure.
//
// The messages of a partition fetched together are handled at the same
// time, one key after the other (keySubscriber), and with Config.Appends
// the event store loads of the messages handled together are served by one
// query and their appends stored with one statement
// (eventstore.GroupCommit); every message still goes through the whole
// middleware chain alone, and is acked only once its append is stored.
//
// A handler names the event types it handles (HandleEvents): the messages
// of other types on its topic, half of what each service reads, are acked
// as they are fetched and cost no middleware, span or handler call.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/tracing"
)

// Config configures a consumer router.
type Config struct {
	Brokers []string
	// Group is the Kafka consumer group.
	Group string
	// PoisonTopic receives messages that still fail after the retries.
	PoisonTopic string
	// Retries says how often, and how soon, a failing message is retried
	// before it is poisoned.
	Retries Settings
	Logger  *slog.Logger
	// Metrics, if not nil, receives the router's metrics.
	Metrics prometheus.Registerer
	// Appends, if not nil, groups the event store appends of the messages
	// handled at the same time (up to InFlight per partition) into
	// one statement and one transaction, and their loads from the group's
	// pool into one query: each attempt at a message of a topic other
	// than the poison topic is work of this group commit, so the
	// handler's eventstore.Load and eventstore.Commit wait for the group
	// and return the events or the error of their own stream. The message
	// is acked only after its append is stored, as without a group; see
	// eventstore.GroupCommit.
	Appends *eventstore.GroupCommit
	// InFlight is how many messages of one partition are handled at a
	// time at most (DefaultInFlight if 0): messages of different keys
	// fetched together are handled at the same time, those of one key one
	// after the other (see keySubscriber). The poison topic is read one
	// message at a time.
	InFlight int
}

// Stats counts what the router did, for tests and metrics.
type Stats struct {
	Handled  atomic.Int64 // messages acked without error, skipped ones included
	Retries  atomic.Int64
	Poisoned atomic.Int64
}

// Router consumes Kafka topics in one consumer group (and the poison topic,
// if it handles it, in a group of its own).
type Router struct {
	cfg         Config
	router      *message.Router
	wlog        watermill.LoggerAdapter
	subscribers map[string]message.Subscriber // by consumer group
	closers     []func() error
	// Stats count handled, retried and poisoned messages.
	Stats *Stats
}

// New returns a router with the standard middleware; add handlers, then Run.
func New(cfg Config) (*Router, error) {
	wlog := logs.Watermill(cfg.Logger.With("component", "consumer", "group", cfg.Group))
	// The project's producer (acks from all in-sync replicas, idempotent),
	// keeping the original key (placed by murmur2 on the poison topic).
	poisonPub, err := kafka.NewPublisher(cfg.Brokers, cfg.Group+"-poison", originalKey)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, wlog)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		metrics.NewPrometheusMetricsBuilder(cfg.Metrics, "consumer", "").AddPrometheusRouterMetrics(router)
	}
	stats := &Stats{}
	poison, err := middleware.PoisonQueueWithFilter(poisonPublisher{poisonPub, stats}, cfg.PoisonTopic, func(err error) bool {
		return !errors.As(err, new(fromPoisonTopic))
	})
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(
		middleware.Recoverer,
		poison,
		middleware.Retry{
			MaxRetries:      cfg.Retries.MaxRetries,
			InitialInterval: cfg.Retries.RetryInterval,
			MaxInterval:     10 * cfg.Retries.RetryInterval,
			Multiplier:      2,
			// Called on every failure; counts those that will be retried
			// (Watermill's OnRetryHook skips the first).
			ShouldRetry: func(p middleware.RetryParams) bool {
				if p.RetryNum < cfg.Retries.MaxRetries {
					stats.Retries.Add(1)
				}
				return true
			},
			Logger: wlog,
		}.Middleware,
		middleware.CorrelationID,
	)
	return &Router{cfg: cfg, router: router, wlog: wlog, subscribers: map[string]message.Subscriber{},
		closers: []func() error{poisonPub.Close}, Stats: stats}, nil
}

// HandlerFunc handles one message. ctx carries the producer's trace context
// and the message's correlation id. Returning an error retries the message
// and then poisons it (except on the poison topic itself, where it is retried
// until it succeeds); return nil for messages the handler does not care for.
type HandlerFunc func(ctx context.Context, msg *message.Message) error

// Events maps each event type a handler handles to its function.
type Events map[string]HandlerFunc

// HandleEvents subscribes handlers to topic under the given name: each
// message goes to the function of its event type (the event_type header).
// A topic carries every event of its streams and a consumer cares for a
// few of them: a message of another type is acked as it is fetched and
// goes no further, into no middleware, span or handler (its offset is
// stored once every message before it is acked, as any other's). A
// message with no event type goes to the handler chain and fails there
// (EventType), to end in the poison queue.
func (r *Router) HandleEvents(name, topic string, handlers Events) error {
	return r.handle(name, topic, handlers, func(ctx context.Context, msg *message.Message) error {
		eventType, err := EventType(msg)
		if err != nil {
			return err
		}
		if handler, ok := handlers[eventType]; ok {
			return handler(ctx, msg)
		}
		return nil // the poison topic's subscriber hands over every message
	})
}

// Handle subscribes handler to topic under the given name: every message
// of the topic goes to it.
func (r *Router) Handle(name, topic string, handler HandlerFunc) error {
	return r.handle(name, topic, nil, handler)
}

// handle subscribes handler to topic; if only is not nil, the messages of
// the event types it has not are skipped as they are fetched.
func (r *Router) handle(name, topic string, only Events, handler HandlerFunc) error {
	group := r.groupFor(topic)
	sub, ok := r.subscribers[group]
	if !ok {
		if topic == r.cfg.PoisonTopic {
			var err error
			if sub, err = kafka.NewSubscriber(r.cfg.Brokers, group, r.wlog); err != nil {
				return err
			}
		} else {
			sub = newKeySubscriber(r.cfg.Brokers, group, r.cfg.InFlight, r.Stats, r.cfg.Logger.With("component", "consumer"))
		}
		r.subscribers[group] = sub
	}
	if keys, ok := sub.(*keySubscriber); ok && only != nil {
		keys.skip(topic, func(eventType string) bool {
			_, handled := only[eventType]
			return !handled
		})
	}
	r.router.AddConsumerHandler(name, topic, sub, func(msg *message.Message) error {
		rec, _ := recordOf(msg.Context())
		origin := tracing.KafkaOrigin{Topic: topic, Group: group, Partition: rec.partition, Offset: rec.offset, Key: string(rec.key)}
		ctx, span := tracing.StartProcess(msg, origin)
		ctx = tracing.WithCorrelationID(ctx, middleware.MessageCorrelationID(msg))
		end := func() {}
		if topic != r.cfg.PoisonTopic {
			ctx, end = r.cfg.Appends.Start(ctx)
		}
		err := func() error {
			defer end() // a panic too ends the work: the group must not wait for it
			return handler(ctx, msg)
		}()
		tracing.End(span, err)
		if err != nil {
			r.cfg.Logger.WarnContext(ctx, "handling message failed", "handler", name, "message_id", msg.UUID, "err", err,
				"event_type", msg.Metadata.Get(contracts.EventTypeKey))
			if topic == r.cfg.PoisonTopic {
				return fromPoisonTopic{err}
			}
			return err
		}
		r.Stats.Handled.Add(1)
		return nil
	})
	return nil
}

// groupFor is the consumer group that reads topic: the router's group, or
// for the poison topic a group of its own. Each subscription is a Sarama
// consumer group client of its own, so two topics under one group id are
// two members with different subscriptions, and after a broker restart each
// one's join sends the other back into the rebalance, for minutes.
func (r *Router) groupFor(topic string) string {
	if topic == r.cfg.PoisonTopic {
		return contracts.PoisonStoreGroup(r.cfg.Group)
	}
	return r.cfg.Group
}

// fromPoisonTopic is the failure of a handler of the poison topic itself.
// Such a message is retried until it succeeds and never poisoned again:
// poisoning it would overwrite where it first came from, and could loop.
type fromPoisonTopic struct{ error }

func (e fromPoisonTopic) Unwrap() error { return e.error }

// Run consumes until ctx is done, then drains the handlers and closes.
func (r *Router) Run(ctx context.Context) error {
	err := r.router.Run(ctx)
	for _, c := range r.closers {
		err = errors.Join(err, c())
	}
	return err
}

// Running is closed once the router consumes.
func (r *Router) Running() chan struct{} { return r.router.Running() }

// poisonPublisher adds where a poisoned message came from (partition,
// offset, key) and when it was poisoned, so a person can find and requeue it.
type poisonPublisher struct {
	message.Publisher
	stats *Stats
}

func (p poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if rec, ok := recordOf(msg.Context()); ok {
			msg.Metadata.Set(contracts.PoisonedPartitionKey, strconv.Itoa(int(rec.partition)))
			msg.Metadata.Set(contracts.PoisonedOffsetKey, strconv.FormatInt(rec.offset, 10))
			msg.Metadata.Set(contracts.PoisonedKeyKey, string(rec.key))
		}
		msg.Metadata.Set(contracts.PoisonedAtKey, time.Now().UTC().Format(time.RFC3339Nano))
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.stats.Poisoned.Add(int64(len(msgs)))
	return nil
}

// originalKey keeps a poisoned message's original Kafka key.
func originalKey(msg *message.Message) string {
	rec, _ := recordOf(msg.Context())
	return string(rec.key)
}
