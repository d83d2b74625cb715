package ports

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/contracts"
)

// serviceFigures are a service's figures read from its /metrics: the
// numbers that live in its database, the same from every replica.
type serviceFigures struct {
	Name string
	// Err says why the metrics could not be read.
	Err string
	// OutboxEvents and OutboxAge are its forwarder's lag.
	OutboxEvents, OutboxAge float64
	HasOutbox               bool
	// PoisonDepth counts its poison queue's unhandled entries; nil if it
	// has none.
	PoisonDepth *float64
	// PastDeadline counts its orders past their deadline (a gauge named
	// *_overdue_orders, summed over its labels); nil if it tracks none.
	PastDeadline *float64
}

// serviceMetrics reads s's /metrics.
func serviceMetrics(ctx context.Context, s ServiceAPI) serviceFigures {
	f := serviceFigures{Name: s.Name}
	families, err := scrape(ctx, s)
	if err != nil {
		f.Err = err.Error()
		return f
	}
	sum := func(name string) (float64, bool) {
		fam, ok := families[name]
		if !ok {
			return 0, false
		}
		var v float64
		for _, m := range fam.GetMetric() {
			v += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
		return v, true
	}
	f.OutboxEvents, f.HasOutbox = sum("outbox_unforwarded_events")
	f.OutboxAge, _ = sum("outbox_oldest_unforwarded_event_age_seconds")
	for name := range families {
		if v, ok := sum(name); ok && strings.HasSuffix(name, "_poison_queue_depth") {
			f.PoisonDepth = &v
		}
		if v, ok := sum(name); ok && strings.HasSuffix(name, "_overdue_orders") {
			f.PastDeadline = &v
		}
	}
	return f
}

func scrape(ctx context.Context, s ServiceAPI) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.BaseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s does not answer: %w", s.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics answered %s", s.Name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", s.Name, err)
	}
	return families, nil
}

// hop is one step of the pipeline as the overview draws it.
type hop struct {
	Title   string
	Detail  string
	Figures []figure
}

// figure is one number of a hop. Behind marks it in words, not only in
// colour.
type figure struct {
	Label  string
	Value  string
	Behind bool
	// Link, if set, is where the figure's details are.
	Link string
}

type statusCount struct {
	Status order.Status
	Count  int64
}

type overviewData struct {
	Hops        []hop
	Orders      []statusCount
	OrdersErr   string
	Lags        []adapters.TopicLag
	LagsErr     string
	Projections []projections.Status
	ProjErr     string
	Services    []serviceFigures
}

// lag returns group's lag on topic, if Kafka reported it.
func (d *overviewData) lag(group, topic string) (adapters.TopicLag, bool) {
	for _, l := range d.Lags {
		if l.Group == group && l.Topic == topic {
			return l, true
		}
	}
	return adapters.TopicLag{}, false
}

func (d *overviewData) figures(name string) serviceFigures {
	for _, f := range d.Services {
		if f.Name == name {
			return f
		}
	}
	return serviceFigures{Name: name, Err: "not configured"}
}

// gather reads every figure at once, each source on its own: one that
// fails shows its error in its place and the rest still shows.
func (c *Console) gather(ctx context.Context) *overviewData {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	d := &overviewData{Services: make([]serviceFigures, len(c.cfg.Services))}
	var wg sync.WaitGroup
	wg.Go(func() {
		counts, err := c.cfg.Pipeline.CountByStatus(ctx)
		if err != nil {
			d.OrdersErr = err.Error()
		}
		for _, s := range order.Statuses {
			d.Orders = append(d.Orders, statusCount{Status: s, Count: counts[s]})
		}
	})
	wg.Go(func() {
		lags, err := c.cfg.Pipeline.ConsumerLags(ctx)
		d.Lags = lags
		if err != nil {
			d.LagsErr = err.Error()
		}
	})
	wg.Go(func() {
		statuses, err := c.cfg.Pipeline.ProjectionStatuses(ctx)
		d.Projections = statuses
		if err != nil {
			d.ProjErr = err.Error()
		}
	})
	for i, s := range c.cfg.Services {
		wg.Go(func() { d.Services[i] = serviceMetrics(ctx, s) })
	}
	wg.Wait()
	d.Hops = c.hops(d)
	return d
}

// hops lays the figures out along the pipeline: HTTP, the order store and
// outbox, the forwarder and Kafka, the payment service, the way back, the
// read models.
func (c *Console) hops(d *overviewData) []hop {
	orderSvc, paymentSvc := d.figures("order"), d.figures(c.cfg.Payments)
	var placed []figure
	total := int64(0)
	for _, s := range d.Orders {
		total += s.Count
		if s.Count > 0 {
			placed = append(placed, figure{Label: string(s.Status), Value: fmt.Sprint(s.Count), Link: ConsolePath + "orders?status=" + string(s.Status)})
		}
	}
	placed = append([]figure{{Label: "orders", Value: fmt.Sprint(total), Link: ConsolePath + "orders"}}, placed...)
	if d.OrdersErr != "" {
		placed = []figure{{Label: "orders", Value: "unknown: " + d.OrdersErr, Behind: true}}
	}
	hops := []hop{
		{Title: "HTTP API", Detail: "POST /v1/orders: commands on the Order aggregate", Figures: placed},
		{Title: "Order event store = outbox", Detail: "one transaction per command", Figures: outboxFigures(orderSvc)},
		{Title: "Forwarder → Kafka " + contracts.OrderEventsTopic, Detail: "consumer group " + contracts.PaymentGroup, Figures: []figure{d.lagFigure(contracts.PaymentGroup, contracts.OrderEventsTopic)}},
		{Title: "Payment service", Detail: "charge once per order; its store is its outbox", Figures: append(outboxFigures(paymentSvc), poisonFigure(paymentSvc))},
		{Title: "Back: Kafka " + contracts.PaymentEventsTopic + " → order", Detail: "consumer group " + contracts.OrderGroup + "; applies the outcome to the order", Figures: []figure{d.lagFigure(contracts.OrderGroup, contracts.PaymentEventsTopic), poisonFigure(orderSvc)}},
	}
	var read []figure
	for _, p := range d.Projections {
		read = append(read, figure{Label: p.Name + " lag", Value: fmt.Sprintf("%d events", p.LagEvents), Behind: p.LagEvents > 0 || p.LastError != "", Link: ConsolePath + "projections"})
		if p.LastError != "" {
			read = append(read, figure{Label: p.Name + " last error", Value: p.LastError, Behind: true, Link: ConsolePath + "projections"})
		}
	}
	if d.ProjErr != "" {
		read = append(read, figure{Label: "projections", Value: "unknown: " + d.ProjErr, Behind: true})
	}
	hops = append(hops, hop{Title: "Read models", Detail: "projections of the order events", Figures: read})
	if orderSvc.PastDeadline != nil {
		hops[0].Figures = append(hops[0].Figures, figure{Label: "overdue (past a deadline)", Value: fmt.Sprint(*orderSvc.PastDeadline), Behind: *orderSvc.PastDeadline > 0})
	}
	return hops
}

func outboxFigures(f serviceFigures) []figure {
	switch {
	case f.Err != "":
		return []figure{{Label: f.Name + " outbox", Value: "unknown: " + f.Err, Behind: true}}
	case !f.HasOutbox:
		return []figure{{Label: f.Name + " outbox", Value: "not reported"}}
	}
	return []figure{
		{Label: f.Name + " outbox lag", Value: fmt.Sprintf("%.0f events", f.OutboxEvents), Behind: f.OutboxEvents > 0},
		{Label: "oldest unforwarded", Value: formatAge(time.Duration(f.OutboxAge * float64(time.Second))), Behind: f.OutboxAge > 0},
	}
}

func poisonFigure(f serviceFigures) figure {
	fig := figure{Label: f.Name + " poison queue", Link: ConsolePath + "poison/" + f.Name}
	switch {
	case f.Err != "":
		fig.Value, fig.Behind, fig.Link = "unknown", true, ""
	case f.PoisonDepth == nil:
		fig.Value, fig.Link = "none", ""
	default:
		fig.Value, fig.Behind = fmt.Sprintf("%.0f new", *f.PoisonDepth), *f.PoisonDepth > 0
	}
	return fig
}

func (d *overviewData) lagFigure(group, topic string) figure {
	fig := figure{Label: "group " + group + " lag"}
	l, ok := d.lag(group, topic)
	switch {
	case d.LagsErr != "":
		fig.Value, fig.Behind = "unknown: "+d.LagsErr, true
	case !ok:
		fig.Value = "no commits yet"
	case l.Err != "":
		fig.Value, fig.Behind = fmt.Sprintf("%d records (%s)", l.Lag, l.Err), true
	default:
		fig.Value, fig.Behind = fmt.Sprintf("%d records", l.Lag), l.Lag > 0
	}
	return fig
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d := c.gather(r.Context())
	sort.SliceStable(d.Lags, func(i, j int) bool { return d.Lags[i].Group < d.Lags[j].Group })
	c.render(w, r, http.StatusOK, "overview", c.refreshing(c.newPage(r, "Overview", "overview", d)))
}
