package service

import (
	"context"

	"github.com/es-outbox/reference/order/adapters/projections"
)

// Project keeps the read models up to date until ctx is done.
func (s *Service) Project(ctx context.Context) error {
	return projections.Run(ctx, s.pool, projections.All, s.cfg.Projector, s.logger)
}

// Replay rebuilds projection p from the first event and swaps it in.
func (s *Service) Replay(ctx context.Context, p projections.Projection, opts projections.ReplayOptions) (projections.Progress, error) {
	return projections.Replay(ctx, s.pool, p, opts)
}

// ProjectionStatuses says where each projection is and how far behind.
func (s *Service) ProjectionStatuses(ctx context.Context) ([]projections.Status, error) {
	return projections.Statuses(ctx, s.pool, projections.All)
}
