package ports

import (
	"errors"
	"net/http"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/shared/httpserver"
)

// projectionView is a projection's status with its latest rebuild.
type projectionView struct {
	projections.Status
	Run *projections.ReplayRun
}

// Percent is how far the run has got, 0 to 100.
func (v projectionView) Percent() int {
	if v.Run == nil || v.Run.Total == 0 {
		return 0
	}
	return int(min(100, v.Run.Events*100/v.Run.Total))
}

type projectionsData struct {
	Projections []projectionView
	Running     bool
}

func (c *Console) projections(w http.ResponseWriter, r *http.Request) {
	c.showProjections(w, r, http.StatusOK, "", nil)
}

func (c *Console) showProjections(w http.ResponseWriter, r *http.Request, status int, notice string, failure *httpserver.Error) {
	d := &projectionsData{}
	p := c.newPage(r, "Projections", "projections", d)
	p.Notice, p.Error = notice, failure
	statuses, err := c.cfg.Pipeline.ProjectionStatuses(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	runs, err := c.cfg.Rebuilds.Runs(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, s := range statuses {
		v := projectionView{Status: s}
		if run, ok := runs[s.Name]; ok {
			v.Run = &run
			d.Running = d.Running || run.Running()
		}
		d.Projections = append(d.Projections, v)
	}
	if d.Running {
		c.refreshing(p)
	}
	c.render(w, r, status, "projections", p)
}

// rebuild starts a replay of the projection, the same as `order replay`,
// in the background; the projections page shows its progress.
func (c *Console) rebuild(w http.ResponseWriter, r *http.Request) {
	proj, err := projections.Named(r.PathValue("name"))
	if err != nil {
		c.fail(w, r, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()})
		return
	}
	if !c.requireToken(w, r) {
		return
	}
	err = c.cfg.Rebuilds.Start(r.Context(), proj)
	if errors.Is(err, projections.ErrReplayRunning) {
		c.showProjections(w, r, http.StatusConflict, "", &httpserver.Error{Status: http.StatusConflict, Code: "replay_running",
			Message: "A rebuild of " + proj.Name + " is already running: this one was not started."})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, ConsolePath+"projections", http.StatusSeeOther)
}
