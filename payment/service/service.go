package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonkafka"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
	"github.com/es-outbox/reference/shared/postgres"
	"github.com/es-outbox/reference/shared/readiness"
)

// Routes send the payment's events to Kafka.
var Routes = []outbox.Route{{EventTypePrefix: "payment.", Topic: contracts.PaymentEventsTopic}}

var migrations = []postgres.Migration{eventstore.Migrations, adapters.Migrations, poisonstore.Migrations}

// Migrate creates the database if it is missing and applies all migrations.
func Migrate(ctx context.Context, cfg Config) error {
	return postgres.Setup(ctx, cfg.DatabaseURL, migrations...)
}

// requeueClientID names the poison queue's requeue producer to Kafka.
const requeueClientID = "payment-requeue"

// Service is a connected payment service.
type Service struct {
	cfg     Config
	pool    *pgxpool.Pool
	Gateway *adapters.SimulatedGateway
	app     *app.Application
	logger  *slog.Logger
	// Router is the Kafka consumer; its Stats count retries and poisonings.
	Router *consumer.Router
	// Poison is the poison queue the router fills and the HTTP API serves.
	Poison     *poisonapp.Queue
	closeQueue func()
	metrics    *prometheus.Registry
}

// New connects to the database, applies pending migrations and builds the router.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, false, migrations...)
	if err != nil {
		return nil, err
	}
	gateway := adapters.NewSimulatedGateway(pool, adapters.GatewayConfig{
		ApproveLimit: cfg.ApproveLimit, TransientFailureRate: cfg.TransientFailureRate, Latency: cfg.GatewayLatency,
	})
	application := app.New(adapters.NewPaymentRepository(pool), gateway, cfg.Policy, logger)
	reg := httpserver.NewRegistry()
	router, err := consumer.New(consumer.Config{
		Brokers: cfg.KafkaBrokers, Group: contracts.PaymentGroup, PoisonTopic: contracts.PaymentPoisonTopic,
		Retries: cfg.Consumer, Logger: logger, Metrics: reg,
		// The payments of the orders handled at the same time are loaded
		// with one query and stored with one statement.
		Appends: eventstore.NewGroupCommit(pool, 0),
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	poisonQueue, closeQueue := poisonkafka.NewQueue(pool, cfg.KafkaBrokers, requeueClientID, logger)
	if err := errors.Join(ports.HandleOrderEvents(router, application), poisonkafka.HandlePoisonQueue(router, contracts.PaymentPoisonTopic, poisonQueue)); err != nil {
		pool.Close()
		return nil, err
	}
	reg.MustRegister(outbox.LagCollector(pool, outbox.DefaultConsumerGroup))
	ports.RegisterMetrics(reg, application, poisonQueue, router.Stats)
	return &Service{
		cfg: cfg, pool: pool, Gateway: gateway, app: application, logger: logger, Router: router,
		Poison: poisonQueue, closeQueue: closeQueue, metrics: reg,
	}, nil
}

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

// Close releases the database connections and the requeue producer.
func (s *Service) Close() {
	s.closeQueue()
	s.pool.Close()
}

// Handler is the HTTP API: payments, the poison-queue admin endpoints, and
// the operational endpoints.
func (s *Service) Handler() http.Handler {
	return ports.NewHTTPHandler(s.app, s.Poison, s.cfg.AdminToken, httpserver.Ops{Registry: s.metrics, Checks: readiness.Checks(s.pool, s.cfg.KafkaBrokers, migrations...)})
}

// Run consumes order events and the poison queue, serves the HTTP API on ln,
// and forwards payment events if enabled, until ctx is done; then it stops
// taking requests, lets those in flight finish, and drains the rest.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.logger.Info("consuming order events", "brokers", s.cfg.KafkaBrokers, "max_retries", s.cfg.Consumer.MaxRetries)
		return s.Router.Run(ctx)
	})
	g.Go(func() error { return httpserver.Serve(ctx, ln, s.Handler(), s.logger) })
	if s.cfg.Forwarder.Enabled {
		g.Go(func() error {
			return outbox.Run(ctx, s.pool, s.cfg.KafkaBrokers, Routes, s.cfg.Forwarder, s.logger, s.metrics)
		})
	}
	return g.Wait()
}
