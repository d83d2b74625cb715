package ports

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/metrics"
)

// DeadlineVariables configure the deadlines of orders that wait for the
// payment service.
var DeadlineVariables = envconfig.Vars{
	{Name: "ORDER_PAYMENT_TIMEOUT", Default: "15m", Usage: "an order still placed this long after it was placed fails (payment_failed, \"no payment outcome within ...\"); a payment that lands later is refunded"},
	{Name: "ORDER_REFUND_TIMEOUT", Default: "15m", Usage: "an order still refund_requested this long after the refund was asked for counts in order_overdue_orders{status=\"refund_requested\"} (alert on it; nothing is done automatically)"},
	{Name: "ORDER_DEADLINE_CHECK_INTERVAL", Default: "5s", Usage: "how often `serve` looks for orders past their payment deadline"},
}

// DeadlineSettings are the deadlines of orders that wait for another
// service, and how often they are checked.
type DeadlineSettings struct {
	PaymentTimeout time.Duration
	RefundTimeout  time.Duration
	CheckInterval  time.Duration
}

// DeadlineSettingsFrom reads the DeadlineVariables from vs.
func DeadlineSettingsFrom(vs envconfig.Vars) (DeadlineSettings, error) {
	var (
		s    DeadlineSettings
		errs [3]error
	)
	s.PaymentTimeout, errs[0] = vs.Duration("ORDER_PAYMENT_TIMEOUT", false)
	s.RefundTimeout, errs[1] = vs.Duration("ORDER_REFUND_TIMEOUT", false)
	s.CheckInterval, errs[2] = vs.Duration("ORDER_DEADLINE_CHECK_INTERVAL", false)
	return s, errors.Join(errs[:]...)
}

// Deadlines moves on the orders past their payment deadline, every
// CheckInterval, until ctx is done; every replica runs it, and each
// timeout is taken once (app.TimeOutPayments).
type Deadlines struct {
	app      *app.Application
	settings DeadlineSettings
	logger   *slog.Logger
	timeouts prometheus.Counter
}

// NewDeadlines returns the deadline checker and registers its metrics on
// reg: order_payment_timeouts_total (timeouts this replica took) and
// order_overdue_orders by status (read from the store at each scrape, the
// same on every replica: above 0 for placed means timeouts are not being
// taken; for refund_requested, refunds that do not complete).
func NewDeadlines(application *app.Application, s DeadlineSettings, logger *slog.Logger, reg prometheus.Registerer) *Deadlines {
	d := &Deadlines{app: application, settings: s, logger: logger.With("component", "deadlines"),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "order_payment_timeouts_total",
			Help: "Orders this replica failed because no payment outcome came before their deadline (ORDER_PAYMENT_TIMEOUT)."})}
	overdue := prometheus.NewDesc("order_overdue_orders",
		"Orders past their deadline: still placed after ORDER_PAYMENT_TIMEOUT, or still refund_requested after ORDER_REFUND_TIMEOUT.",
		[]string{"status"}, nil)
	reg.MustRegister(d.timeouts, metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		counts, err := application.OverdueOrders(ctx, s.PaymentTimeout, s.RefundTimeout)
		for _, status := range []order.Status{order.StatusPlaced, order.StatusRefundRequested} {
			emit(overdue, float64(counts[status]), string(status))
		}
		return err
	}, overdue))
	return d
}

// Run checks the deadlines until ctx is done. A failed check is logged and
// tried again at the next interval.
func (d *Deadlines) Run(ctx context.Context) error {
	d.logger.Info("checking payment deadlines", "payment_timeout", d.settings.PaymentTimeout, "interval", d.settings.CheckInterval)
	ticker := time.NewTicker(d.settings.CheckInterval)
	defer ticker.Stop()
	for {
		n, err := d.app.TimeOutPayments(ctx, d.settings.PaymentTimeout)
		d.timeouts.Add(float64(n))
		if n > 0 {
			d.logger.Info("orders failed at their payment deadline", "orders", n)
		}
		if err != nil && ctx.Err() == nil {
			d.logger.Warn("checking payment deadlines failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
