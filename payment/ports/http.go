package ports

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/poison"
	"github.com/es-outbox/reference/shared/httpapi"
)

// adminTokenVariable is where the admin token comes from, named in the
// answer of disabled admin endpoints.
const adminTokenVariable = "PAYMENT_ADMIN_TOKEN"

// HTTPServer serves the payment service's HTTP API.
type HTTPServer struct {
	payments *app.Application
	poison   *app.PoisonQueue
}

// NewHTTPHandler returns the payment service's HTTP API: GET
// /v1/payments/{order_id}, the poison-queue admin endpoints under
// /v1/admin/poison, which need "Authorization: Bearer <adminToken>" and are
// disabled while adminToken is empty, and the operational endpoints
// (/livez, /readyz, /metrics).
func NewHTTPHandler(payments *app.Application, queue *app.PoisonQueue, adminToken string, ops httpapi.Ops) http.Handler {
	s := HTTPServer{payments: payments, poison: queue}
	admin := requireAdminToken(adminToken)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/payments/{order_id}", s.getPayment)
	mux.Handle("GET /v1/admin/poison", admin(s.listPoison))
	mux.Handle("GET /v1/admin/poison/{id}", admin(s.getPoison))
	mux.Handle("POST /v1/admin/poison/{id}/requeue", admin(s.requeuePoison))
	mux.Handle("POST /v1/admin/poison/requeue-all", admin(s.requeueAllPoison))
	mux.Handle("POST /v1/admin/poison/{id}/discard", admin(s.discardPoison))
	return httpapi.Handler(mux, ops)
}

// requireAdminToken guards the admin endpoints with a bearer token, compared
// in constant time (as SHA-256 sums, so that not even its length leaks).
// Without a configured token they answer 503: a deployment that forgot to set
// one is closed, not open.
func requireAdminToken(token string) func(http.HandlerFunc) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				httpapi.WriteError(w, r, &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "admin_disabled",
					Message: "admin endpoints are disabled until " + adminTokenVariable + " is set"})
				return
			}
			got, ok := bearerToken(r)
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="payment admin"`)
				httpapi.WriteError(w, r, &httpapi.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
					Message: "a valid admin token is required: Authorization: Bearer <token>"})
				return
			}
			next(w, r)
		})
	}
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

func (s HTTPServer) listPoison(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("status")
	if filter == "" {
		filter = string(poison.StatusNew)
	}
	status, err := poison.ParseStatusFilter(filter)
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	entries, err := s.poison.List(r.Context(), status)
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	resp := struct {
		Entries []PoisonEntryJSON `json:"entries"`
	}{Entries: []PoisonEntryJSON{}}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, NewPoisonEntryJSON(e))
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (s HTTPServer) getPoison(w http.ResponseWriter, r *http.Request) {
	e, err := s.poison.Entry(r.Context(), r.PathValue("id"))
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, NewPoisonEntryJSON(e))
}

// requeueRequest is the optional body of the requeue endpoints.
type requeueRequest struct {
	By     string `json:"by"`
	DryRun bool   `json:"dry_run"`
}

func (s HTTPServer) requeuePoison(w http.ResponseWriter, r *http.Request) {
	var req requeueRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	outcomes, err := s.poison.Requeue(r.Context(), app.RequeueRequest{IDs: []string{r.PathValue("id")}, By: req.By, DryRun: req.DryRun})
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, NewOutcomeJSON(outcomes[0]))
}

func (s HTTPServer) requeueAllPoison(w http.ResponseWriter, r *http.Request) {
	var req requeueRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	outcomes, err := s.poison.Requeue(r.Context(), app.RequeueRequest{All: true, By: req.By, DryRun: req.DryRun})
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	writeOutcomes(w, outcomes)
}

// discardRequest is the body of the discard endpoint.
type discardRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
}

func (s HTTPServer) discardPoison(w http.ResponseWriter, r *http.Request) {
	var req discardRequest
	if err := httpapi.DecodeJSON(w, r, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	outcomes, err := s.poison.Discard(r.Context(), []string{r.PathValue("id")}, req.Reason, req.By)
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, NewOutcomeJSON(outcomes[0]))
}

func writeOutcomes(w http.ResponseWriter, outcomes []app.Outcome) {
	resp := struct {
		Outcomes []OutcomeJSON `json:"outcomes"`
	}{Outcomes: []OutcomeJSON{}}
	for _, o := range outcomes {
		resp.Outcomes = append(resp.Outcomes, NewOutcomeJSON(o))
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// decodeOptionalJSON decodes a request body if there is one.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return httpapi.DecodeJSON(w, r, dst)
}

// apiError maps the poison queue's errors to HTTP errors, in one place.
func apiError(err error) error {
	switch {
	case errors.Is(err, poison.ErrNotFound):
		return &httpapi.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no poison-queue entry with this id"}
	case errors.Is(err, poison.ErrInvalidStatus):
		return httpapi.BadField("status", "must be new, requeued, discarded or all")
	case errors.Is(err, poison.ErrReasonRequired):
		return httpapi.BadField("reason", "is required: say why the message is set aside")
	case errors.Is(err, poison.ErrNoOrigin):
		return &httpapi.Error{Status: http.StatusConflict, Code: "not_requeueable", Message: err.Error()}
	case errors.Is(err, app.ErrPublish):
		return &httpapi.Error{Status: http.StatusBadGateway, Code: "publish_failed", Message: err.Error()}
	}
	return err
}
