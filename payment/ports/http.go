package ports

import (
	_ "embed"
	"net/http"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// HTTPServer serves the payment service's HTTP API.
type HTTPServer struct {
	payments *app.Application
}

// NewHTTPHandler returns the payment service's HTTP API: GET
// /v1/payments/{order_id}, its OpenAPI document, the poison-queue admin
// endpoints under
// /v1/admin/poison, which need "Authorization: Bearer <adminToken>" and are
// disabled while adminToken is empty, and the operational endpoints
// (/livez, /readyz, /metrics).
func NewHTTPHandler(payments *app.Application, queue *poisonapp.Queue, adminToken string, ops httpserver.Ops) http.Handler {
	s := HTTPServer{payments: payments}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/payments/{order_id}", s.getPayment)
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	poisonhttp.Register(mux, queue, poisonhttp.Admin{Token: adminToken, TokenVariable: "PAYMENT_ADMIN_TOKEN", Realm: "payment admin"})
	return httpserver.Handler(mux, ops)
}
