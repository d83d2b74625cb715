package service

import (
	"cmp"
	"context"
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
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpapi"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/postgres"
)

// Routes send the order's events to Kafka.
var Routes = []outbox.Route{{EventTypePrefix: "order.", Topic: "order.events"}}

var migrations = []postgres.Migration{eventstore.Migrations, adapters.Migrations}

// Migrate creates the database if it is missing and applies all migrations.
func Migrate(ctx context.Context, cfg Config) error {
	return postgres.Setup(ctx, cfg.DatabaseURL, migrations...)
}

// Service is a connected order service.
type Service struct {
	cfg       Config
	pool      *pgxpool.Pool
	app       *app.Application
	logger    *slog.Logger
	metrics   *prometheus.Registry
	deadlines *ports.Deadlines
}

// New connects to the database and applies pending migrations.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, false, migrations...)
	if err != nil {
		return nil, err
	}
	reg := httpapi.NewRegistry()
	reg.MustRegister(outbox.LagCollector(pool, outbox.DefaultConsumerGroup), projections.LagCollector(pool, projections.All))
	summaries := projections.NewSummaryReader(pool)
	application := app.New(adapters.NewOrderRepository(pool)).WithOrderSummaries(summaries).WithDeadlines(summaries)
	d := &cfg.Deadlines
	d.PaymentTimeout = cmp.Or(d.PaymentTimeout, DefaultDeadlines.PaymentTimeout)
	d.RefundTimeout = cmp.Or(d.RefundTimeout, DefaultDeadlines.RefundTimeout)
	d.CheckInterval = cmp.Or(d.CheckInterval, DefaultDeadlines.CheckInterval)
	return &Service{cfg: cfg, pool: pool, app: application, logger: logger, metrics: reg,
		deadlines: ports.NewDeadlines(application, cfg.Deadlines, logger, reg)}, nil
}

// Close releases the database connections.
func (s *Service) Close() { s.pool.Close() }

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler {
	return ports.NewHTTPHandler(s.app, httpapi.Ops{Registry: s.metrics, Checks: httpapi.ReadyChecks(s.pool, s.cfg.KafkaBrokers, migrations...)})
}

// Serve runs the HTTP API on ln, the consumer of payment outcomes, the
// payment deadlines, and the forwarder and the projector if enabled, until
// ctx is done; then it stops
// taking requests, lets those in flight finish, and drains the rest.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	router, err := consumer.New(consumer.Config{
		Brokers: s.cfg.KafkaBrokers, Group: ports.ConsumerGroup, PoisonTopic: ports.PoisonTopic,
		Retries: s.cfg.Consumer, Logger: s.logger, Metrics: s.metrics,
	})
	if err != nil {
		return err
	}
	if err := ports.HandlePaymentEvents(router, s.app); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return router.Run(ctx) })
	g.Go(func() error { return httpapi.Serve(ctx, ln, s.Handler(), s.logger) })
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
