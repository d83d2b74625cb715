package service

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
	"github.com/es-outbox/reference/shared/poison/poisonkafka"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
	"github.com/es-outbox/reference/shared/postgres"
	"github.com/es-outbox/reference/shared/readiness"
)

// Routes send the order's events to Kafka.
var Routes = []outbox.Route{{EventTypePrefix: "order.", Topic: contracts.OrderEventsTopic}}

var migrations = []postgres.Migration{eventstore.Migrations, adapters.Migrations, poisonstore.Migrations}

// Migrate creates the database if it is missing and applies all migrations.
func Migrate(ctx context.Context, cfg Config) error {
	return postgres.Setup(ctx, cfg.DatabaseURL, migrations...)
}

// Service is a connected order service.
type Service struct {
	cfg       Config
	pool      *pgxpool.Pool
	appends   *eventstore.GroupCommit
	app       *app.Application
	logger    *slog.Logger
	metrics   *prometheus.Registry
	kafka     *adapters.KafkaInspector
	deadlines *ports.Deadlines
	// Poison is the poison queue (order.poison) the consumer fills and the
	// admin API and `order poison` serve.
	Poison     *poisonapp.Queue
	closeQueue func()
}

// New connects to the database and applies pending migrations.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, false, migrations...)
	if err != nil {
		return nil, err
	}
	reg := httpserver.NewRegistry()
	reg.MustRegister(outbox.LagCollector(pool, outbox.DefaultConsumerGroup), projections.LagCollector(pool, projections.All))
	summaries := projections.NewSummaryReader(pool)
	// The orders placed and the payment outcomes handled at the same time
	// are stored with one statement; the orders of the outcomes are loaded
	// with one query.
	appends := eventstore.NewGroupCommit(pool, 0)
	application := app.New(adapters.NewOrderRepository(pool, appends)).WithOrderSummaries(summaries).WithDeadlines(summaries)
	d := &cfg.Deadlines
	d.PaymentTimeout = cmp.Or(d.PaymentTimeout, DefaultDeadlines.PaymentTimeout)
	d.RefundTimeout = cmp.Or(d.RefundTimeout, DefaultDeadlines.RefundTimeout)
	d.CheckInterval = cmp.Or(d.CheckInterval, DefaultDeadlines.CheckInterval)
	kafka, err := adapters.NewKafkaInspector(cfg.KafkaBrokers)
	if err != nil {
		pool.Close()
		return nil, err
	}
	queue, closeQueue := poisonkafka.NewQueue(pool, cfg.KafkaBrokers, requeueClientID, logger)
	reg.MustRegister(poisonhttp.DepthCollector(queue, "order_poison_queue_depth"))
	return &Service{cfg: cfg, pool: pool, appends: appends, app: application, logger: logger, metrics: reg, kafka: kafka,
		deadlines: ports.NewDeadlines(application, cfg.Deadlines, logger, reg), Poison: queue, closeQueue: closeQueue}, nil
}

// requeueClientID names the poison queue's requeue producer to Kafka.
const requeueClientID = "order-requeue"

// OpenPoisonQueue connects to the poison store, applying pending migrations,
// for commands that work on the poison queue without running the service.
// Call closeQueue when done.
func OpenPoisonQueue(ctx context.Context, cfg Config, logger *slog.Logger) (queue *poisonapp.Queue, closeQueue func(), err error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, false, migrations...)
	if err != nil {
		return nil, nil, err
	}
	queue, closeRequeuer := poisonkafka.NewQueue(pool, cfg.KafkaBrokers, requeueClientID, logger)
	return queue, func() { closeRequeuer(); pool.Close() }, nil
}

// Close releases the database connections, the Kafka client and the
// requeue producer.
func (s *Service) Close() {
	s.kafka.Close()
	s.closeQueue()
	s.pool.Close()
}

// Handler is the HTTP API, with the console; the console's rebuilds run
// until the process ends.
func (s *Service) Handler() http.Handler {
	h, _ := s.handler(context.Background())
	return h
}

// handler is the HTTP API, with the console, whose rebuilds run until ctx
// is done (wait waits for them).
func (s *Service) handler(ctx context.Context) (h http.Handler, wait func()) {
	replayer := projections.NewReplayer(ctx, s.pool, s.logger)
	console, err := ports.NewConsole(ports.ConsoleConfig{
		App:      s.app,
		Pipeline: pipeline{StatusCounts: projections.NewStatusCounts(s.pool), KafkaInspector: s.kafka, pool: s.pool},
		Rebuilds: replayer,
		Services: []ports.ServiceAPI{
			{Name: "order", BaseURL: "http://order", Client: ports.InProcess(func() http.Handler { return h })},
			{Name: "payment", BaseURL: s.cfg.Console.PaymentURL},
		},
		Payments:           "payment",
		AdminToken:         s.cfg.AdminToken,
		AdminTokenVariable: "ORDER_ADMIN_TOKEN",
		JaegerURL:          s.cfg.Console.JaegerURL,
		Logger:             s.logger,
	})
	if err != nil {
		panic(err) // the templates are embedded: tests catch this
	}
	h = ports.NewHTTPHandler(s.app, s.Poison, s.cfg.AdminToken,
		httpserver.Ops{Registry: s.metrics, Checks: readiness.Checks(s.pool, s.cfg.KafkaBrokers, migrations...)}, console.Register)
	return h, replayer.Wait
}

// pipeline is what the console reads from the order store and Kafka.
type pipeline struct {
	projections.StatusCounts
	*adapters.KafkaInspector
	pool *pgxpool.Pool
}

func (p pipeline) ProjectionStatuses(ctx context.Context) ([]projections.Status, error) {
	return projections.Statuses(ctx, p.pool, projections.All)
}

// Serve runs the HTTP API on ln, the consumer of payment outcomes, the
// payment deadlines, and the forwarder and the projector if enabled, until
// ctx is done; then it stops
// taking requests, lets those in flight finish, and drains the rest.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	router, err := consumer.New(consumer.Config{
		Brokers: s.cfg.KafkaBrokers, Group: contracts.OrderGroup, PoisonTopic: contracts.OrderPoisonTopic,
		Retries: s.cfg.Consumer, Logger: s.logger, Metrics: s.metrics,
		Appends: s.appends,
	})
	if err != nil {
		return err
	}
	if err := errors.Join(ports.HandlePaymentEvents(router, s.app), poisonkafka.HandlePoisonQueue(router, contracts.OrderPoisonTopic, s.Poison)); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	handler, rebuilds := s.handler(ctx)
	g.Go(func() error { return router.Run(ctx) })
	g.Go(func() error {
		err := httpserver.Serve(ctx, ln, handler, s.logger)
		rebuilds()
		return err
	})
	g.Go(func() error { return s.deadlines.Run(ctx) })
	if s.cfg.Forwarder.Enabled {
		g.Go(func() error { return s.Forward(ctx) })
	}
	if s.cfg.Projector.Enabled {
		g.Go(func() error { return s.Project(ctx) })
	}
	return g.Wait()
}

// Forward runs the forwarder until ctx is done.
func (s *Service) Forward(ctx context.Context) error {
	return outbox.Run(ctx, s.pool, s.cfg.KafkaBrokers, Routes, s.cfg.Forwarder, s.logger, s.metrics)
}
