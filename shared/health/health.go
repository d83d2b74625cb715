// Package health serves the probes of a service: /livez says the process is
// alive; /readyz says it can do its work: the database answers, its
// migrations are applied, and a Kafka broker accepts connections.
package health

import (
	"context"
	"net/http"
	"time"

	"github.com/es-outbox/reference/shared/httpapi"
)

// Check is one readiness condition.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Register adds GET /livez and GET /readyz to mux.
func Register(mux *http.ServeMux, checks ...Check) {
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
		httpapi.WriteJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": results})
	})
}

// Probe asks a running service's /readyz, for container health checks
// (the images have no curl): nil if it answered 200.
func Probe(ctx context.Context, addr string) error {
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
		return &probeError{resp.Status}
	}
	return nil
}

type probeError struct{ status string }

func (e *probeError) Error() string { return "not ready: " + e.status }
