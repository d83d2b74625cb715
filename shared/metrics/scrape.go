// Package metrics holds what the services' Prometheus metrics share.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Emit reports one value of desc, with its label values.
type Emit func(desc *prometheus.Desc, value float64, labels ...string)

// ScrapeCollector reports gauges that read computes at each scrape (within
// 5 s): numbers that live in the database, the same from every replica. If
// read fails, the scrape reports the error rather than stale numbers.
func ScrapeCollector(read func(ctx context.Context, emit Emit) error, descs ...*prometheus.Desc) prometheus.Collector {
	return scrapeCollector{read: read, descs: descs}
}

type scrapeCollector struct {
	read  func(context.Context, Emit) error
	descs []*prometheus.Desc
}

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var samples []prometheus.Metric
	err := c.read(ctx, func(desc *prometheus.Desc, value float64, labels ...string) {
		samples = append(samples, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...))
	})
	if err != nil {
		for _, d := range c.descs {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	for _, m := range samples {
		ch <- m
	}
}
