package ports

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/shared/consumer"
)

// RegisterMetrics adds the payment service's own metrics to reg: payments
// by outcome, the poison queue's depth and the consumer's counters.
func RegisterMetrics(reg prometheus.Registerer, payments *app.Application, queue *app.PoisonQueue, stats *consumer.Stats) {
	reg.MustRegister(
		outcomesCollector{payments: payments, desc: prometheus.NewDesc("payment_outcomes",
			"Payment outcomes recorded in the payment store, by outcome (succeeded, declined, refunded).", []string{"outcome"}, nil)},
		poisonDepthCollector{queue: queue, desc: prometheus.NewDesc("payment_poison_queue_depth",
			"Poisoned messages nobody has requeued or discarded yet (status new in the poison store).", nil, nil)},
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
type outcomesCollector struct {
	payments *app.Application
	desc     *prometheus.Desc
}

func (c outcomesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c outcomesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.payments.Outcomes(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for outcome, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(outcome))
	}
}

// poisonDepthCollector reads the depth from the poison store at each scrape;
// if the store cannot answer, the scrape fails rather than report a stale
// or made-up depth.
type poisonDepthCollector struct {
	queue *app.PoisonQueue
	desc  *prometheus.Desc
}

func (c poisonDepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c poisonDepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	depth, err := c.queue.Depth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(depth))
}
