package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
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
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, true, migrations...)
	if err == nil {
		pool.Close()
	}
	return err
}

// Service is a connected order service.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	app    *app.Application
	logger *slog.Logger
}

// New connects to the database and applies pending migrations.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Service, error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, false, migrations...)
	if err != nil {
		return nil, err
	}
	application := app.New(adapters.NewOrderRepository(pool)).WithOrderSummaries(projections.NewSummaryReader(pool))
	return &Service{cfg: cfg, pool: pool, app: application, logger: logger}, nil
}

// Close releases the database connections.
func (s *Service) Close() { s.pool.Close() }

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return ports.NewHTTPHandler(s.app) }

// Serve runs the HTTP API on ln, and the forwarder and the projector if
// enabled, until ctx is done; then it stops taking requests, lets those in
// flight finish, and drains the forwarder.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	srv := httpapi.NewServer(ln.Addr().String(), s.Handler())
	g.Go(func() error {
		s.logger.Info("serving HTTP", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		return httpapi.Shutdown(srv, 10*time.Second)
	})
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
	return outbox.Run(ctx, s.pool, s.cfg.KafkaBrokers, Routes, s.cfg.Forwarder, s.logger)
}
