// Package poisonhttp is a service's poison-queue admin HTTP API, the same for
// both services (under /v1/admin/poison, behind a bearer token), the JSON
// it answers with (also the CLI's --json), and the queue's depth metric.
package poisonhttp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// Admin says who may use the admin endpoints.
type Admin struct {
	// Token is the bearer token the endpoints require; while it is empty
	// they answer 503, so a deployment that forgot to set one is closed.
	Token string
	// TokenVariable is where Token comes from, named in that 503:
	// PAYMENT_ADMIN_TOKEN, ORDER_ADMIN_TOKEN.
	TokenVariable string
	// Realm names the service in the WWW-Authenticate challenge: "payment admin".
	Realm string
}

// Register adds the poison-queue admin endpoints over queue to mux:
//
//	GET  /v1/admin/poison[?status=new|requeued|discarded|all]
//	GET  /v1/admin/poison/{id}
//	POST /v1/admin/poison/{id}/requeue     {"by": "ann", "dry_run": true} (optional)
//	POST /v1/admin/poison/requeue-all      the same optional body
//	POST /v1/admin/poison/{id}/discard     {"reason": "...", "by": "ann"}
//
// each requiring "Authorization: Bearer <admin.Token>".
func Register(mux *http.ServeMux, queue *poisonapp.Queue, admin Admin) {
	s := server{poison: queue}
	guard := requireAdminToken(admin)
	mux.Handle("GET /v1/admin/poison", guard(s.listPoison))
	mux.Handle("GET /v1/admin/poison/{id}", guard(s.getPoison))
	mux.Handle("POST /v1/admin/poison/{id}/requeue", guard(s.requeuePoison))
	mux.Handle("POST /v1/admin/poison/requeue-all", guard(s.requeueAllPoison))
	mux.Handle("POST /v1/admin/poison/{id}/discard", guard(s.discardPoison))
}

type server struct {
	poison *poisonapp.Queue
}

// requireAdminToken guards the admin endpoints with a bearer token, compared
// in constant time (as SHA-256 sums, so that not even its length leaks).
// Without a configured token they answer 503: a deployment that forgot to set
// one is closed, not open.
func requireAdminToken(admin Admin) func(http.HandlerFunc) http.Handler {
	token := admin.Token
	return func(next http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				httpserver.WriteError(w, r, &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "admin_disabled",
					Message: "admin endpoints are disabled until " + admin.TokenVariable + " is set"})
				return
			}
			got, ok := bearerToken(r)
			if !ok || !httpserver.TokenMatches(token, got) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+admin.Realm+`"`)
				httpserver.WriteError(w, r, &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
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

func (s server) listPoison(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("status")
	if filter == "" {
		filter = string(poison.StatusNew)
	}
	status, err := poison.ParseStatusFilter(filter)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	entries, err := s.poison.List(r.Context(), status)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Entries []PoisonEntryJSON `json:"entries"`
	}{Entries: jsonList(entries, NewPoisonEntryJSON)})
}

func (s server) getPoison(w http.ResponseWriter, r *http.Request) {
	e, err := s.poison.Entry(r.Context(), r.PathValue("id"))
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, NewPoisonEntryJSON(e))
}

// requeueRequest is the optional body of the requeue endpoints.
type requeueRequest struct {
	By     string `json:"by"`
	DryRun bool   `json:"dry_run"`
}

func (s server) requeuePoison(w http.ResponseWriter, r *http.Request) {
	if outcomes, ok := s.requeue(w, r, poisonapp.RequeueRequest{IDs: []string{r.PathValue("id")}}); ok {
		httpserver.WriteJSON(w, http.StatusOK, NewOutcomeJSON(outcomes[0]))
	}
}

func (s server) requeueAllPoison(w http.ResponseWriter, r *http.Request) {
	if outcomes, ok := s.requeue(w, r, poisonapp.RequeueRequest{All: true}); ok {
		httpserver.WriteJSON(w, http.StatusOK, struct {
			Outcomes []OutcomeJSON `json:"outcomes"`
		}{Outcomes: jsonList(outcomes, NewOutcomeJSON)})
	}
}

// requeue requeues the entries selected selects, by whom and as a dry run
// if the request's optional body says so. It writes the error if there is
// one, and then returns false.
func (s server) requeue(w http.ResponseWriter, r *http.Request, selected poisonapp.RequeueRequest) ([]poisonapp.Outcome, bool) {
	var req requeueRequest
	if err := httpserver.DecodeOptionalJSON(w, r, &req); err != nil {
		httpserver.WriteError(w, r, err)
		return nil, false
	}
	selected.By, selected.DryRun = req.By, req.DryRun
	outcomes, err := s.poison.Requeue(r.Context(), selected)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return nil, false
	}
	return outcomes, true
}

// discardRequest is the body of the discard endpoint.
type discardRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
}

func (s server) discardPoison(w http.ResponseWriter, r *http.Request) {
	var req discardRequest
	if err := httpserver.DecodeJSON(w, r, &req); err != nil {
		httpserver.WriteError(w, r, err)
		return
	}
	outcomes, err := s.poison.Discard(r.Context(), []string{r.PathValue("id")}, req.Reason, req.By)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, NewOutcomeJSON(outcomes[0]))
}

// jsonList returns each of items as JSON, an empty list (never null) if
// there are none.
func jsonList[T, J any](items []T, toJSON func(T) J) []J {
	list := make([]J, 0, len(items))
	for _, item := range items {
		list = append(list, toJSON(item))
	}
	return list
}

// apiError maps the poison queue's errors to HTTP errors, in one place.
func apiError(err error) error {
	var field *poison.FieldError
	switch {
	case errors.As(err, &field):
		return httpserver.BadField(field.Field, field.Message)
	case errors.Is(err, poison.ErrNotFound):
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no poison-queue entry with this id"}
	case errors.Is(err, poison.ErrInvalidStatus):
		return httpserver.BadField("status", "must be new, requeued, discarded or all")
	case errors.Is(err, poison.ErrReasonRequired):
		return httpserver.BadField("reason", "is required: say why the message is set aside")
	case errors.Is(err, poison.ErrNoOrigin):
		return &httpserver.Error{Status: http.StatusConflict, Code: "not_requeueable", Message: err.Error()}
	case errors.Is(err, poisonapp.ErrPublish):
		return &httpserver.Error{Status: http.StatusBadGateway, Code: "publish_failed", Message: err.Error()}
	}
	return err
}
