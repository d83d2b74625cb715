package poisonhttp

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/es-outbox/reference/shared/metrics"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// DepthCollector reports the queue's depth as the gauge name
// (payment_poison_queue_depth, order_poison_queue_depth), read from the
// poison store at each scrape, so every replica reports the same: the
// entries nobody has requeued or discarded yet. Alert on it above 0.
func DepthCollector(queue *poisonapp.Queue, name string) prometheus.Collector {
	desc := prometheus.NewDesc(name, "Poisoned messages nobody has requeued or discarded yet (status new in the poison store).", nil, nil)
	return metrics.ScrapeCollector(func(ctx context.Context, emit metrics.Emit) error {
		depth, err := queue.Depth(ctx)
		emit(desc, float64(depth))
		return err
	}, desc)
}
