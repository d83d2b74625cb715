package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/tracing"
)

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// DB is the event store's database, opened through pgx's database/sql
	// driver (stdlib.OpenDBFromPool, as Run does): the reads pass pgx an exec
	// mode as their first argument (postgres.PlanEveryRun), which another
	// driver would refuse.
	DB *sql.DB
	// Brokers are the Kafka bootstrap brokers.
	Brokers []string
	// ConsumerGroup names this forwarder's read position in reader_positions.
	// Forwarders in the same group share the work; default "forwarder".
	ConsumerGroup string
	// Routes map event types to Kafka topics (see Routing).
	Routes []Route
	// PollInterval is how long to wait before reading again after finding
	// nothing new, while events were appended within the IdlePollInterval;
	// an append's notification ends the wait at once. Default 20ms.
	PollInterval time.Duration
	// IdlePollInterval is that wait when nothing was appended for as long:
	// the fallback should a notification be missed. Default 1s.
	IdlePollInterval time.Duration
	// BatchSize is how many events one read returns, the most the
	// forwarder hands to Kafka before waiting for its acknowledgements;
	// default 1000: each batch waits once for them, so a larger one drains
	// a backlog faster (a steady load reads a handful of events at a time
	// whatever the size).
	BatchSize int
	// Logger receives Watermill's logs; nil discards them.
	Logger watermill.LoggerAdapter
	// Metrics, if not nil, receives the router's metrics.
	Metrics prometheus.Registerer
}

// DefaultBatchSize is how many events a forwarder reads per query unless
// configured otherwise (ForwarderConfig.BatchSize).
const DefaultBatchSize = 1000

// DefaultConsumerGroup is the forwarder's group unless configured otherwise.
const DefaultConsumerGroup = "forwarder"

func (c *ForwarderConfig) setDefaults() {
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = DefaultConsumerGroup
	}
	if c.PollInterval == 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.IdlePollInterval == 0 {
		c.IdlePollInterval = time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
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
	case c.PollInterval < 0 || c.IdlePollInterval < 0 || c.BatchSize < 0:
		return errors.New("outbox: poll intervals and batch size must not be negative")
	}
	return nil
}

// Forwarder is a Watermill router that moves events from the events table to
// Kafka: SQL subscriber → routing middleware → Kafka producer. Each message
// is a batch, everything one read returned: it hands every event to the
// producer without waiting, then waits until Kafka has acknowledged all of
// them, and meanwhile reads the next batch in the same transaction (see
// forward). Its offset only ever advances to a position up to which Kafka
// acknowledged every event, so every event reaches Kafka at least once, in
// commit order per stream.
type Forwarder struct {
	router     *message.Router
	subscriber *wsql.Subscriber
	schema     EventsSchemaAdapter
	locked     *groupLocked
	routes     []Route
	sender     *sender
	confirmed  *confirmedPosition
	wakeUp     *wakeUp
	db         *sql.DB
	group      string
	logger     watermill.LoggerAdapter

	// mu is held while batches are sent and settled; once draining is set,
	// no batch is sent any more and refused is closed at the first message
	// refused.
	mu       sync.Mutex
	draining atomic.Bool
	refused  chan struct{}

	stop context.CancelFunc // ends a wait for the group's lock
}

// ackDeadline is how long the SQL subscriber waits for forward to settle a
// batch before it gives the batch up: it ends its transaction, and with it
// the group's lock, and reads the batch again. forward waits for Kafka for
// as long as Kafka takes (the producer retries without a delivery timeout),
// so with Watermill's default of 30 s a Kafka outage made the subscriber
// read the same batch again every 30 s and queue it behind the one
// waiting, each copy to be sent once more when Kafka was back, and let the
// group's other forwarders take the lock and send it too. The subscriber
// needs a deadline (it refuses none); a stop does not wait for it (drain
// aborts the wait for Kafka after abortTimeout).
const ackDeadline = 24 * time.Hour

// errDraining refuses batches while the forwarder stops; the subscriber keeps
// them unacknowledged, so they are sent after the restart, once.
var errDraining = errors.New("outbox: forwarder is stopping")

// NewForwarder builds a forwarder; Run starts it.
func NewForwarder(cfg ForwarderConfig) (_ *Forwarder, err error) {
	cfg.setDefaults()
	if err = cfg.validate(); err != nil {
		return nil, err
	}
	confirmed := &confirmedPosition{}
	const retryInterval = time.Second
	wake := newWakeUp(cfg.PollInterval, cfg.IdlePollInterval, retryInterval)
	stopped, stop := context.WithCancel(context.Background()) // stopped by closeAll
	defer func() {
		if err != nil {
			stop()
		}
	}()
	schema := EventsSchemaAdapter{BatchSize: cfg.BatchSize}
	ackDeadline := ackDeadline
	locked := &groupLocked{DB: cfg.DB, group: cfg.ConsumerGroup, stopped: stopped}
	subscriber, err := wsql.NewSubscriber(locked, wsql.SubscriberConfig{
		ConsumerGroup:  cfg.ConsumerGroup,
		AckDeadline:    &ackDeadline,
		PollInterval:   cfg.PollInterval,
		ResendInterval: 100 * time.Millisecond,
		RetryInterval:  retryInterval,
		BackoffManager: releasing{BackoffManager: wake, locked: locked},
		SchemaAdapter:  schema,
		OffsetsAdapter: newConfirmedOffsets(confirmed),
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("outbox: SQL subscriber: %w", err)
	}
	sender, err := newSender(cfg.Brokers, cfg.BatchSize)
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
	f := &Forwarder{router: router, subscriber: subscriber, schema: schema, locked: locked, routes: cfg.Routes, sender: sender, confirmed: confirmed,
		wakeUp: wake, db: cfg.DB, group: cfg.ConsumerGroup, logger: cfg.Logger, refused: make(chan struct{}), stop: stop}
	handler := router.AddConsumerHandler("forward_events", EventsTopic, subscriber, f.forward)
	// No retry middleware: a Kafka failure is not the handler's error but
	// the batch's (see forward), and a routing error does not pass by
	// retrying; a nacked batch is offered again every ResendInterval.
	handler.AddMiddleware(Routing(cfg.Routes...))
	return f, nil
}

// batchesPerTransaction is the most batches forward sends in one read
// transaction of the subscriber. Each transaction costs an offset update, a
// commit, a begin and a wait for the group's lock, about as much as
// reading a batch; more batches per transaction make that cost small,
// fewer store the offset more often (a crash sends again what was
// confirmed since the last one) and let the group's other forwarders take
// their turn sooner.
const batchesPerTransaction = 10

// forward sends a batch to Kafka and then the batches after it, up to
// batchesPerTransaction, reading them in the subscriber's read transaction
// (wsql.TxFromContext), which holds the group's lock. For each batch it
// hands every event to the producer for the destination the routing
// middleware chose, then settles the batch: it waits until Kafka has
// answered for every event and, if none failed, confirms the batch's last
// position. A full batch means a backlog: the next one is read (in a
// goroutine of its own) while this one is handed over and acknowledged, so
// a batch takes about the longer of the two instead of their sum; after a
// short batch (a steady load) the next is read once the acknowledgements
// are in, so that it holds the events committed meanwhile.
//
// Only one batch at a time is in Kafka's hands: the next is handed over
// once every event of the one before is acknowledged. So when an event
// fails, no later event is in the producer to land before it is sent
// again: forward confirms nothing of its batch and returns, the
// subscriber stores the previous confirmed position and reads the whole
// batch again. Resending it (rather than only what failed) keeps each
// stream's events in order after the failed one; consumers dedupe what
// arrives twice. Everything handed over is settled before forward returns,
// so the transaction, and with it the group's lock, ends with nothing of
// the group in flight: the group's next reader starts after the last
// confirmed event.
func (f *Forwarder) forward(batch *message.Message) error {
	events, ok := routedEvents(batch.Context())
	if !ok {
		return fmt.Errorf("outbox: batch %s is not routed; is the routing middleware installed?", batch.UUID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining.Load() {
		select {
		case <-f.refused:
		default:
			close(f.refused)
		}
		return errDraining
	}
	tx, inTx := wsql.TxFromContext(batch.Context())
	for sent := 1; len(events) > 0; sent++ {
		last := events[len(events)-1].position
		more := inTx && sent < batchesPerTransaction
		full := len(events) >= f.schema.batchSize()
		var next []forwardedEvent
		var readErr error
		var read chan struct{} // closed once the read ahead is done
		if more && full {
			read = make(chan struct{})
			go func() {
				defer close(read)
				next, readErr = f.readAfter(batch.Context(), tx, last)
			}()
		}
		for _, e := range events {
			span := tracing.StartSend(kafka.HeaderCarrier{Record: e.record},
				tracing.Send{Topic: e.destination.Topic, Key: e.destination.Key, MessageID: e.id, EventType: e.eventType})
			f.sender.send(e.record, span)
		}
		err := f.sender.flush()
		if read != nil {
			<-read // the transaction is the subscriber's again once forward returns
		}
		if err != nil {
			f.logger.Error("Kafka refused an event; the batch will be sent again", err, watermill.LogFields{"events": len(events)})
			return nil
		}
		f.confirmed.advance(last)
		if !more || f.draining.Load() {
			return nil
		}
		if !full {
			next, readErr = f.readAfter(batch.Context(), tx, last)
		}
		if readErr != nil {
			// The subscriber reads these events again in its next
			// transaction (the routing middleware reports an event that
			// cannot be routed there).
			f.logger.Info("Reading ahead failed; the events will be read again", watermill.LogFields{"err": readErr.Error()})
			return nil
		}
		events = next
	}
	return nil
}

// readAfter reads and routes the batch after position p within tx.
func (f *Forwarder) readAfter(ctx context.Context, tx *sql.Tx, p eventstore.Position) ([]forwardedEvent, error) {
	batch, err := f.schema.readAfter(ctx, tx, f.locked.connOf(tx), p)
	if err != nil || batch == nil {
		return nil, err
	}
	return routeBatch(f.routes, batch)
}

// drain stops sending (the batch being sent is settled first, under mu), then
// waits for the subscriber to take the last batch's acknowledgement, which
// it shows by offering the next batch (refused) or by a short quiet spell
// when there was none. Closing the subscriber then makes it store the
// confirmed position, so nothing sent is sent again after a restart.
func (f *Forwarder) drain() {
	// A batch waiting for a broker that is away would hold the stop for as
	// long as the outage lasts; after abortTimeout its events are failed
	// (so it is not confirmed, and is sent again after a restart).
	abort := time.AfterFunc(abortTimeout, f.sender.abort)
	defer abort.Stop()
	f.draining.Store(true)
	f.mu.Lock() // once the batch being sent is settled
	f.mu.Unlock()
	select {
	case <-f.refused:
	case <-time.After(100 * time.Millisecond):
	}
}

// Run forwards events until ctx is done, then stops in the order that sends
// nothing twice: it drains the events in flight, closes the SQL subscriber so
// that it stores the offset of what has been sent, then the router, then the
// Kafka producer.
func (f *Forwarder) Run(ctx context.Context) error {
	if err := createGroupPosition(ctx, f.db, f.group); err != nil {
		f.closeAll()
		if ctx.Err() != nil {
			return nil // stopped before it began: nothing read, nothing to drain
		}
		return err
	}
	listening, stopListening := context.WithCancel(context.Background())
	defer stopListening()
	go f.wakeUp.listen(listening, f.db, f.logger)
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
	f.wakeUp.stop()
	f.stop()
	err := errors.Join(f.subscriber.Close(), f.router.Close())
	f.locked.release()
	f.sender.close()
	return err
}

// Running is closed once the forwarder is reading events.
func (f *Forwarder) Running() chan struct{} { return f.router.Running() }
