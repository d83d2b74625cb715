package ports

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// poisonPath is the poison queue's admin API, the same on every service
// that has one.
const poisonPath = "/v1/admin/poison"

// poisonEntry is a poison-queue entry as the admin API returns it.
type poisonEntry struct{ poisonhttp.PoisonEntryJSON }

// Header is one of the entry's headers, for listing them in order.
type header struct{ Name, Value string }

func (e poisonEntry) Headers() []header {
	var hs []header
	for k, v := range e.Metadata {
		hs = append(hs, header{k, v})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs
}

// PayloadText is the payload, indented if it is JSON.
func (e poisonEntry) PayloadText() string { return indentJSON([]byte(e.Payload)) }

type poisonOutcome struct {
	ID     string      `json:"id"`
	Result string      `json:"result"`
	Entry  poisonEntry `json:"entry"`
}

// Says is what the outcome means, in words.
func (o poisonOutcome) Says() string {
	switch o.Result {
	case "requeued":
		to := o.Entry.Origin.Topic
		if o.Entry.RequeuedTo != nil {
			to = o.Entry.RequeuedTo.String()
		}
		return fmt.Sprintf("Requeued %s to %s.", o.ID, to)
	case "would_requeue":
		return fmt.Sprintf("Dry run: %s would be published to %s with key %q; nothing was done.", o.ID, o.Entry.Origin.Topic, o.Entry.Key)
	case "discarded":
		return fmt.Sprintf("Discarded %s.", o.ID)
	case "unchanged":
		return fmt.Sprintf("%s was %s already: nothing was done.", o.ID, o.Entry.Status)
	}
	return o.ID + ": " + o.Result
}

// poisonQueue is a service whose API has a poison queue.
type poisonQueue struct {
	Service ServiceAPI
	// Depth counts the new entries, from the service's metrics (no token
	// needed); nil if unknown.
	Depth *float64
	Err   string
}

// poisonQueues returns the services whose API has a poison queue: those
// that answer its list with anything but a 404 (401 without a token).
func (c *Console) poisonQueues(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "poison_queues", c.refreshing(c.newPage(r, "Poison queues", "poison", c.queues(r.Context()))))
}

func (c *Console) queues(ctx context.Context) []poisonQueue {
	queues := make([]*poisonQueue, len(c.cfg.Services))
	var wg sync.WaitGroup
	for i, s := range c.cfg.Services {
		wg.Go(func() {
			status, err := callJSON(ctx, s, http.MethodGet, poisonPath+"?status=new", "", nil, nil)
			if status == http.StatusNotFound {
				return
			}
			q := &poisonQueue{Service: s}
			if status == 0 && err != nil {
				q.Err = err.Error()
			}
			q.Depth = serviceMetrics(ctx, s).PoisonDepth
			queues[i] = q
		})
	}
	wg.Wait()
	var out []poisonQueue
	for _, q := range queues {
		if q != nil {
			out = append(out, *q)
		}
	}
	return out
}

type poisonListData struct {
	Service  string
	Status   string
	Statuses []string
	Entries  []poisonEntry
	Outcomes []poisonOutcome
	// RequeueAll says the page answers a requeue of all, DryRun whether
	// it was one.
	RequeueAll, DryRun bool
}

var poisonStatuses = []string{"new", "requeued", "discarded", "all"}

// poisonService is the service named in the path, or a 404 written.
func (c *Console) poisonService(w http.ResponseWriter, r *http.Request) (ServiceAPI, bool) {
	s, ok := c.service(r.PathValue("service"))
	if !ok {
		c.fail(w, r, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: "No service is called " + r.PathValue("service") + "."})
	}
	return s, ok
}

// admin calls s's admin API with the session's token. A refused token is
// forgotten, so that the page asks for it again.
func (c *Console) admin(w http.ResponseWriter, r *http.Request, s ServiceAPI, method, path string, body, out any) error {
	token := adminToken(r)
	if token == "" {
		return &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Enter the admin token first: nothing was done."}
	}
	status, err := callJSON(r.Context(), s, method, path, token, body, out)
	if status == http.StatusUnauthorized {
		setTokenCookie(w, r, "")
		msg := "The " + s.Name + " service refused the admin token. Enter the right token."
		if method != http.MethodGet {
			msg = "The " + s.Name + " service refused the admin token: nothing was done. Enter the right token and try again."
		}
		return &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
	}
	return err
}

func (c *Console) poisonList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.poisonService(w, r)
	if !ok {
		return
	}
	d := &poisonListData{Service: s.Name, Status: r.URL.Query().Get("status"), Statuses: poisonStatuses}
	if d.Status == "" {
		d.Status = "new"
	}
	c.showPoisonList(w, r, s, d, http.StatusOK)
}

func (c *Console) showPoisonList(w http.ResponseWriter, r *http.Request, s ServiceAPI, d *poisonListData, status int) {
	p := c.newPage(r, "Poison queue of "+s.Name, "poison", d)
	if p.HasToken {
		var list struct {
			Entries []poisonEntry `json:"entries"`
		}
		if err := c.admin(w, r, s, http.MethodGet, poisonPath+"?status="+url.QueryEscape(d.Status), nil, &list); err != nil {
			p.Error = c.publicError(r, err)
			if status == http.StatusOK {
				status = p.Error.Status
			}
		}
		d.Entries = list.Entries
	}
	c.render(w, r, status, "poison_list", p)
}

type poisonEntryData struct {
	Service string
	Entry   *poisonEntry
	Outcome *poisonOutcome
}

func (c *Console) poisonEntry(w http.ResponseWriter, r *http.Request) {
	s, ok := c.poisonService(w, r)
	if !ok {
		return
	}
	c.showPoisonEntry(w, r, s, nil, http.StatusOK)
}

func (c *Console) showPoisonEntry(w http.ResponseWriter, r *http.Request, s ServiceAPI, outcome *poisonOutcome, status int) {
	id := r.PathValue("id")
	d := &poisonEntryData{Service: s.Name, Outcome: outcome}
	p := c.newPage(r, "Poison entry "+id+" of "+s.Name, "poison", d)
	if outcome != nil {
		p.Notice = outcome.Says()
	}
	if p.HasToken {
		var e poisonEntry
		if err := c.admin(w, r, s, http.MethodGet, poisonPath+"/"+url.PathEscape(id), nil, &e); err != nil {
			p.Error = c.publicError(r, err)
			if status == http.StatusOK {
				status = p.Error.Status
			}
		} else {
			d.Entry = &e
		}
	}
	c.render(w, r, status, "poison_entry", p)
}

// actionRequest is the body the admin API's actions take.
type actionRequest struct {
	By     string `json:"by,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (c *Console) poisonRequeue(w http.ResponseWriter, r *http.Request) {
	if s, ok := c.poisonService(w, r); ok {
		c.poisonAction(w, r, s, "requeue", actionRequest{By: by(r), DryRun: r.PostFormValue("dry_run") != ""})
	}
}

func (c *Console) poisonDiscard(w http.ResponseWriter, r *http.Request) {
	s, ok := c.poisonService(w, r)
	if !ok {
		return
	}
	req := actionRequest{By: by(r), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if req.Reason == "" {
		// Checked here too, so that the form says so before the token is
		// asked for.
		c.actionFailed(w, r, s, httpserver.BadField("reason", "Say why the message is set aside: the reason is required."))
		return
	}
	c.poisonAction(w, r, s, "discard", req)
}

// poisonAction asks s to requeue or discard the entry, and shows the entry
// with what happened.
func (c *Console) poisonAction(w http.ResponseWriter, r *http.Request, s ServiceAPI, action string, req actionRequest) {
	var outcome poisonOutcome
	if err := c.admin(w, r, s, http.MethodPost, poisonPath+"/"+url.PathEscape(r.PathValue("id"))+"/"+action, req, &outcome); err != nil {
		c.actionFailed(w, r, s, err)
		return
	}
	c.showPoisonEntry(w, r, s, &outcome, http.StatusOK)
}

func (c *Console) poisonRequeueAll(w http.ResponseWriter, r *http.Request) {
	s, ok := c.poisonService(w, r)
	if !ok {
		return
	}
	req := actionRequest{By: by(r), DryRun: r.PostFormValue("dry_run") != ""}
	var res struct {
		Outcomes []poisonOutcome `json:"outcomes"`
	}
	d := &poisonListData{Service: s.Name, Status: "new", Statuses: poisonStatuses, RequeueAll: true, DryRun: req.DryRun}
	if err := c.admin(w, r, s, http.MethodPost, poisonPath+"/requeue-all", req, &res); err != nil {
		c.actionFailed(w, r, s, err)
		return
	}
	d.Outcomes = res.Outcomes
	c.showPoisonList(w, r, s, d, http.StatusOK)
}

// actionFailed shows why an action was not done, on the page it came from.
func (c *Console) actionFailed(w http.ResponseWriter, r *http.Request, s ServiceAPI, err error) {
	var apiErr *httpserver.Error
	if !errors.As(err, &apiErr) {
		c.fail(w, r, err)
		return
	}
	p := c.newPage(r, "Not done", "poison", nil)
	p.Error = apiErr
	p.Data = map[string]string{"Service": s.Name, "Back": ConsolePath + "poison/" + s.Name}
	if id := r.PathValue("id"); id != "" {
		p.Data = map[string]string{"Service": s.Name, "Back": ConsolePath + "poison/" + s.Name + "/" + id}
	}
	c.render(w, r, apiErr.Status, "error", p)
}

// by names who acts, as the form says, else "console".
func by(r *http.Request) string {
	if b := strings.TrimSpace(r.PostFormValue("by")); b != "" && len(b) <= 100 {
		return b
	}
	return "console"
}
