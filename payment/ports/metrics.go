package ports

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/metrics"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// RegisterMetrics adds the payment service's own metrics to reg: payments
// by outcome, the poison queue's depth and the consumer's counters.
func RegisterMetrics(reg prometheus.Registerer, payments *app.Application, queue *poisonapp.Queue, stats *consumer.Stats) {
	reg.MustRegister(
		outcomesCollector(payments),
		poisonhttp.DepthCollector(queue, "payment_poison_queue_depth"),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payment_messages_handled_total",
			Help: "Messages the consumer handled without error, skipped ones and stored poison records included."},
			func() float64 { return float64(stats.Handled.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payment_message_retries_total",
			Help: "Retries of messages whose handler failed."},
			func() float64 { return float64(stats.Retries.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payment_messages_poisoned_total",
			Help: "Messages sent to the poison queue after their retries."},
			func() float64 { return float64(stats.Poisoned.Load()) }),
	)
}

// outcomesCollector counts the outcomes in the payment store at each scrape,
// so every replica reports the same, whole numbers.
func outcomesCollector(payments *app.Application) prometheus.Collector {
	desc := prometheus.NewDesc("payment_outcomes",
		"Payment outcomes recorded in the payment store, by outcome (succeeded, declined, refunded).", []string{"outcome"}, nil)
	return metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		counts, err := payments.Outcomes(ctx)
		for outcome, n := range counts {
			emit(desc, float64(n), string(outcome))
		}
		return err
	}, desc)
}
