package adapters

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/tracing"
)

// GatewayConfig sets the simulated gateway's rules.
type GatewayConfig struct {
	// ApproveLimit: charges up to this amount (minor units) are approved,
	// larger ones declined.
	ApproveLimit int64
	// TransientFailureRate is the chance (0 to 1) that a call fails with
	// payment.ErrTransient before charging anything.
	TransientFailureRate float64
	// Latency is added to every call.
	Latency time.Duration
}

// SimulatedGateway is a deterministic payment gateway with a ledger in
// PostgreSQL, idempotent by order id like a real provider's idempotency keys.
type SimulatedGateway struct {
	pool    *pgxpool.Pool
	ledger  *ledger
	cfg     GatewayConfig
	calls   atomic.Int64
	charges atomic.Int64
	failing atomic.Int64
}

// NewSimulatedGateway returns a gateway whose ledger is in pool.
func NewSimulatedGateway(pool *pgxpool.Pool, cfg GatewayConfig) *SimulatedGateway {
	return &SimulatedGateway{pool: pool, ledger: &ledger{pool: pool}, cfg: cfg}
}

// Charge approves or declines by amount; a repeated order id gets the first answer.
func (g *SimulatedGateway) Charge(ctx context.Context, req payment.Request) (charge payment.Charge, err error) {
	err = tracing.Do(ctx, "gateway charge", trace.SpanKindClient, func(ctx context.Context) error {
		charge, err = g.charge(ctx, req)
		return err
	}, attribute.String("order.id", req.OrderID), attribute.Int64("payment.amount", req.Amount))
	return charge, err
}

func (g *SimulatedGateway) charge(ctx context.Context, req payment.Request) (payment.Charge, error) {
	if err := g.call(ctx); err != nil {
		return payment.Charge{}, err
	}

	charge := payment.Charge{ID: uuid.NewString(), Approved: req.Amount <= g.cfg.ApproveLimit}
	if !charge.Approved {
		charge.DeclineReason = fmt.Sprintf("amount %d exceeds the approval limit of %d", req.Amount, g.cfg.ApproveLimit)
	}
	stored, err := g.ledger.record(ctx, req, charge)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%w: ledger: %v", payment.ErrTransient, err)
	}
	if stored.ID == charge.ID {
		g.charges.Add(1)
	}
	return stored, nil
}

// Refund refunds a charge; a repeated order id gets the first refund.
func (g *SimulatedGateway) Refund(ctx context.Context, orderID, chargeID string, amount int64) (refund payment.Refund, err error) {
	err = tracing.Do(ctx, "gateway refund", trace.SpanKindClient, func(ctx context.Context) error {
		refund, err = g.refund(ctx, orderID, chargeID, amount)
		return err
	}, attribute.String("order.id", orderID), attribute.Int64("payment.amount", amount))
	return refund, err
}

func (g *SimulatedGateway) refund(ctx context.Context, orderID, chargeID string, amount int64) (payment.Refund, error) {
	if err := g.call(ctx); err != nil {
		return payment.Refund{}, err
	}
	refund := payment.Refund{ID: uuid.NewString()}
	err := g.pool.QueryRow(ctx, `
		WITH inserted AS (
			INSERT INTO gateway_refunds (idempotency_key, refund_id, charge_id, amount)
			VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING
			RETURNING refund_id
		)
		SELECT refund_id::text FROM inserted
		UNION ALL SELECT refund_id::text FROM gateway_refunds WHERE idempotency_key = $1
		LIMIT 1`,
		orderID, refund.ID, chargeID, amount).Scan(&refund.ID)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("%w: ledger: %v", payment.ErrTransient, err)
	}
	return refund, nil
}

// call simulates the network: latency, and transient failures on demand.
func (g *SimulatedGateway) call(ctx context.Context) error {
	g.calls.Add(1)
	if g.cfg.Latency > 0 {
		select {
		case <-time.After(g.cfg.Latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if g.failing.Add(-1) >= 0 || rand.Float64() < g.cfg.TransientFailureRate {
		return fmt.Errorf("%w: simulated outage", payment.ErrTransient)
	}
	g.failing.Store(0)
	return nil
}

// FailNext makes the next n calls fail transiently, to show retries.
func (g *SimulatedGateway) FailNext(n int) { g.failing.Store(int64(n)) }

// Calls counts calls to Charge and Refund, including failed and repeated ones.
func (g *SimulatedGateway) Calls() int64 { return g.calls.Load() }

// Charges counts new charges this process made (repeats excluded).
func (g *SimulatedGateway) Charges() int64 { return g.charges.Load() }
