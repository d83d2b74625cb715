package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/messaging"
)

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// DB is the event store's database.
	DB *sql.DB
	// Brokers are the Kafka bootstrap brokers.
	Brokers []string
	// ConsumerGroup names this forwarder's read position in outbox_offsets.
	// Forwarders in the same group share the work; default "forwarder".
	ConsumerGroup string
	// Routes map event types to Kafka topics (see Routing).
	Routes []Route
	// PollInterval is how long to wait before reading again after finding
	// nothing new; default 20ms.
	PollInterval time.Duration
	// BatchSize is how many events one read returns; default 100.
	BatchSize int
	// Logger receives Watermill's logs; nil discards them.
	Logger watermill.LoggerAdapter
	// Metrics, if not nil, receives the router's metrics.
	Metrics prometheus.Registerer
}

// DefaultConsumerGroup is the forwarder's group unless configured otherwise.
const DefaultConsumerGroup = "forwarder"

func (c *ForwarderConfig) setDefaults() {
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = DefaultConsumerGroup
	}
	if c.PollInterval == 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

func (c ForwarderConfig) validate() error {
	switch {
	case c.DB == nil:
		return errors.New("outbox: forwarder needs a database")
	case len(c.Brokers) == 0:
		return errors.New("outbox: forwarder needs Kafka brokers")
	case len(c.Routes) == 0:
		return errors.New("outbox: forwarder needs at least one route")
	case c.PollInterval < 0 || c.BatchSize < 0:
		return errors.New("outbox: poll interval and batch size must not be negative")
	}
	return nil
}

// Forwarder is a Watermill router that moves events from the events table to
// Kafka: SQL subscriber → routing middleware → Kafka publisher. The read
// position advances only after Kafka acknowledged the event, so every event
// reaches Kafka at least once, in commit order per stream.
type Forwarder struct {
	router     *message.Router
	subscriber *wsql.Subscriber
	publisher  message.Publisher
	logger     watermill.LoggerAdapter

	// mu is held while an event is being sent; once draining is set, no
	// event is sent any more and refused is closed at the first one refused.
	mu       sync.Mutex
	draining bool
	refused  chan struct{}
}

// errDraining refuses events while the forwarder stops; the subscriber keeps
// them unacknowledged, so they are sent after the restart, once.
var errDraining = errors.New("outbox: forwarder is stopping")

// NewForwarder builds a forwarder; Run starts it.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	subscriber, err := wsql.NewSubscriber(cfg.DB, wsql.SubscriberConfig{
		ConsumerGroup:  cfg.ConsumerGroup,
		PollInterval:   cfg.PollInterval,
		ResendInterval: 100 * time.Millisecond,
		RetryInterval:  time.Second,
		SchemaAdapter:  EventsSchemaAdapter{BatchSize: cfg.BatchSize},
		OffsetsAdapter: OffsetsAdapter,
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("outbox: SQL subscriber: %w", err)
	}
	publisher, err := kafka.NewPublisher(cfg.Brokers, "forwarder", PartitionKey, cfg.Logger)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		metrics.NewPrometheusMetricsBuilder(cfg.Metrics, "forwarder", "").AddPrometheusRouterMetrics(router)
	}
	f := &Forwarder{router: router, subscriber: subscriber, publisher: publisher, logger: cfg.Logger, refused: make(chan struct{})}
	handler := router.AddNoPublisherHandler("forward_events", EventsTopic, subscriber, f.forward)
	handler.AddMiddleware(Routing(cfg.Routes...))
	// A failed publish is retried here rather than nacked, so that the batch
	// transaction stays short; the subscriber resends if retries run out.
	router.AddMiddleware(middleware.Retry{
		MaxRetries:      5,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !errors.Is(p.Err, errDraining) },
		Logger:          cfg.Logger,
	}.Middleware)
	return f, nil
}

// forward publishes the event to the destination the routing middleware chose.
func (f *Forwarder) forward(msg *message.Message) error {
	d, ok := DestinationFromContext(msg.Context())
	if !ok {
		return fmt.Errorf("outbox: event %s has no destination; is the routing middleware installed?", msg.UUID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining {
		select {
		case <-f.refused:
		default:
			close(f.refused)
		}
		return errDraining
	}
	_, span := messaging.StartSend(msg, d.Topic, d.Key)
	err := f.publisher.Publish(d.Topic, msg)
	messaging.End(span, err)
	return err
}

// drain stops sending: it waits for the event being sent, then for the
// subscriber to take that event's acknowledgement, which it shows by
// offering the next event (refused) or by a short quiet spell when the
// batch ended. Closing the subscriber before then would leave the last sent
// event unacknowledged, and it would be sent again after a restart.
func (f *Forwarder) drain() {
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	select {
	case <-f.refused:
	case <-time.After(100 * time.Millisecond):
	}
}

// Run forwards events until ctx is done, then stops in the order that sends
// nothing twice: it drains the event in flight, closes the SQL subscriber so
// that it stores the offset of what has been sent, then the router, then the
// Kafka producer.
func (f *Forwarder) Run(ctx context.Context) error {
	runErr := make(chan error, 1)
	go func() { runErr <- f.router.Run(context.Background()) }()

	select {
	case <-ctx.Done():
	case err := <-runErr:
		f.closeAll()
		return fmt.Errorf("outbox: forwarder stopped: %w", err)
	}
	f.drain()
	err := f.closeAll()
	if rerr := <-runErr; rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func (f *Forwarder) closeAll() error {
	return errors.Join(f.subscriber.Close(), f.router.Close(), f.publisher.Close())
}

// Running is closed once the forwarder is reading events.
func (f *Forwarder) Running() chan struct{} { return f.router.Running() }
