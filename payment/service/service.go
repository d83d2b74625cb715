package service

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/postgres"
)

// Routes send the payment's events to Kafka.
var Routes = []outbox.Route{{EventTypePrefix: "payment.", Topic: "payment.events"}}

var migrations = []postgres.Migration{eventstore.Migrations, adapters.Migrations}

// Migrate creates the database if it is missing and applies all migrations.
func Migrate(ctx context.Context, cfg Config) error {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, true, migrations...)
	if err == nil {
		pool.Close()
	}
	return err
}

// Service is a connected payment service.
type Service struct {
	cfg     Config
	pool    *pgxpool.Pool
	Gateway *adapters.SimulatedGateway
	app     *app.Application
	logger  *slog.Logger
	// Router is the Kafka consumer; its Stats count retries and poisonings.
	Router *consumer.Router
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
	application := app.New(adapters.NewPaymentRepository(pool), gateway, logger)
	router, err := consumer.New(consumer.Config{
		Brokers: cfg.KafkaBrokers, Group: ports.ConsumerGroup, PoisonTopic: ports.PoisonTopic,
		Retries: cfg.Consumer, Logger: logger,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	ports.HandleOrderEvents(router, application)
	return &Service{cfg: cfg, pool: pool, Gateway: gateway, app: application, logger: logger, Router: router}, nil
}

// Close releases the database connections.
func (s *Service) Close() { s.pool.Close() }

// Run consumes order events, and forwards payment events if enabled, until
// ctx is done; then it drains both.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.logger.Info("consuming order events", "brokers", s.cfg.KafkaBrokers, "max_retries", s.cfg.Consumer.MaxRetries)
		return s.Router.Run(ctx)
	})
	if s.cfg.Forwarder.Enabled {
		g.Go(func() error {
			return outbox.Run(ctx, s.pool, s.cfg.KafkaBrokers, Routes, s.cfg.Forwarder, s.logger, nil)
		})
	}
	return g.Wait()
}
