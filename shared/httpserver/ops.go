package httpserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ops are the operational endpoints every service serves beside its API:
// /livez says the process is alive; /readyz says it can do its work (its
// Checks pass: for the services, readiness.Checks); /metrics is Prometheus
// text.
type Ops struct {
	Checks []Check
	// Registry holds the service's metrics; Handler adds the HTTP ones.
	Registry *prometheus.Registry
}

// NewRegistry returns a registry with the Go runtime and process metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves the API routes in mux plus the ops endpoints, through the
// middleware (correlation id, server span, request metrics).
func Handler(mux *http.ServeMux, ops Ops) http.Handler {
	register(mux, ops.Checks...)
	var m *requestMetrics
	if ops.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(ops.Registry, promhttp.HandlerOpts{}))
		m = newRequestMetrics(ops.Registry)
	}
	return middleware(mux, m)
}

// Check is one readiness condition.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// register adds GET /livez and GET /readyz to mux.
func register(mux *http.ServeMux, checks ...Check) {
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, results := http.StatusOK, map[string]string{}
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				status, results[c.Name] = http.StatusServiceUnavailable, err.Error()
			} else {
				results[c.Name] = "ok"
			}
		}
		WriteJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": results})
	})
}

// Probe asks a running service's /readyz, for container health checks
// (the images have no curl): nil if it answered 200 within 3 s.
func Probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("not ready: " + resp.Status)
	}
	return nil
}
