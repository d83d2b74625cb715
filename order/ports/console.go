package ports

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/httpserver"
)

//go:embed console
var consoleFiles embed.FS

// ConsolePath is where the operator console is served.
const ConsolePath = "/console/"

// tokenCookie holds the admin token for the browser session: HttpOnly, so
// no page or script can read it back, and without an expiry, so it ends
// with the session.
const tokenCookie = "console_admin_token"

// ServiceAPI is a service's HTTP API as the console reaches it.
type ServiceAPI struct {
	// Name is the service's name: order, payment.
	Name string
	// BaseURL is where its API answers, such as http://127.0.0.1:8081.
	BaseURL string
	// Client sends the requests; nil means a client with a 5 s timeout.
	Client *http.Client
}

// InProcess returns a client that serves every request with the handler
// handler returns, in this process: the order service reaches its own API
// (metrics, poison admin) as it reaches the payment service's, without
// needing to know its own address.
func InProcess(handler func() http.Handler) *http.Client {
	return &http.Client{Transport: inProcess(handler), Timeout: 5 * time.Second}
}

type inProcess func() http.Handler

func (h inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	h().ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Pipeline reads the figures of the order service's own stores and of
// Kafka that the console shows.
type Pipeline interface {
	// CountByStatus returns how many orders are in each status.
	CountByStatus(ctx context.Context) (map[order.Status]int64, error)
	// ConsumerLags returns each consumer group's lag per topic, from Kafka.
	ConsumerLags(ctx context.Context) ([]adapters.TopicLag, error)
	// ProjectionStatuses says where each projection is and how far behind.
	ProjectionStatuses(ctx context.Context) ([]projections.Status, error)
	// Records returns a stream's records on topic (those with its key),
	// looking from about since until it has want of them, within limits.
	Records(ctx context.Context, topic, key string, since time.Time, want int) ([]adapters.Record, error)
}

// Rebuilds runs projection replays in the background (projections.Replayer).
type Rebuilds interface {
	Start(ctx context.Context, p projections.Projection) error
	Runs(ctx context.Context) (map[string]projections.ReplayRun, error)
}

// ConsoleConfig is what the console needs.
type ConsoleConfig struct {
	App      *app.Application
	Pipeline Pipeline
	Rebuilds Rebuilds
	// Services are the APIs whose metrics and poison queues the console
	// shows, the order service's own first. A service's poison queue is
	// shown when its API has /v1/admin/poison.
	Services []ServiceAPI
	// Payments is the name of the service in Services whose
	// /v1/payments/{order_id} shows an order's payment.
	Payments string
	// AdminToken is the token the console's own actions (a rebuild) need;
	// empty disables them. Poison-queue actions need the token of the
	// service they act on, which checks it.
	AdminToken string
	// AdminTokenVariable names where AdminToken comes from, for messages.
	AdminTokenVariable string
	// JaegerURL, if set, is a Jaeger UI address: each event links to its
	// trace at JaegerURL/trace/<trace id>.
	JaegerURL string
	// Refresh is how often the pages that show live figures reload them;
	// 0 means 3 s.
	Refresh time.Duration
	// Now returns the time; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *ConsoleConfig) setDefaults() {
	if c.Refresh <= 0 {
		c.Refresh = 3 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for i := range c.Services {
		if c.Services[i].Client == nil {
			c.Services[i].Client = &http.Client{Timeout: 5 * time.Second}
		}
		c.Services[i].BaseURL = strings.TrimRight(c.Services[i].BaseURL, "/")
	}
}

// Console is the operator console: server-rendered pages for the whole
// pipeline, under ConsolePath. It keeps no state of its own; everything
// comes from the order store, Kafka and the services' APIs, so any replica
// serves it.
type Console struct {
	cfg   ConsoleConfig
	pages map[string]*template.Template
}

// NewConsole returns the console.
func NewConsole(cfg ConsoleConfig) (*Console, error) {
	cfg.setDefaults()
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	names, err := fs.Glob(consoleFiles, "console/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if name == "console/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(c.funcs()).ParseFS(consoleFiles, "console/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[strings.TrimSuffix(strings.TrimPrefix(name, "console/"), ".html")] = t
	}
	return c, nil
}

// Register adds the console's routes to mux. Its forms are protected from
// cross-site requests (Go's cross-origin protection, and a SameSite token
// cookie).
func (c *Console) Register(mux *http.ServeMux) {
	console := http.NewServeMux()
	static, _ := fs.Sub(consoleFiles, "console/static")
	console.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	console.HandleFunc("GET /console/{$}", c.overview)
	console.HandleFunc("GET /console/orders", c.orders)
	console.HandleFunc("POST /console/orders", c.placeOrder)
	console.HandleFunc("GET /console/orders/{id}", c.order)
	console.HandleFunc("GET /console/poison", c.poisonQueues)
	console.HandleFunc("GET /console/poison/{service}", c.poisonList)
	console.HandleFunc("GET /console/poison/{service}/{id}", c.poisonEntry)
	console.HandleFunc("POST /console/poison/{service}/requeue-all", c.poisonRequeueAll)
	console.HandleFunc("POST /console/poison/{service}/{id}/requeue", c.poisonRequeue)
	console.HandleFunc("POST /console/poison/{service}/{id}/discard", c.poisonDiscard)
	console.HandleFunc("GET /console/projections", c.projections)
	console.HandleFunc("POST /console/projections/{name}/rebuild", c.rebuild)
	console.HandleFunc("POST /console/token", c.setToken)
	console.HandleFunc("POST /console/token/forget", c.forgetToken)
	console.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: "There is no console page at " + r.URL.Path + "."})
	})
	protected := http.NewCrossOriginProtection().Handler(console)
	mux.Handle("/console/", protected)
	mux.Handle("GET /console", http.RedirectHandler(ConsolePath, http.StatusMovedPermanently))
}

// page is what every page's template gets.
type page struct {
	Title string
	// Nav is the section of the navigation the page belongs to.
	Nav string
	// Refresh, if not zero, reloads the page's live parts every so often.
	Refresh int
	// HasToken says whether an admin token is set for this session (never
	// the token itself).
	HasToken bool
	// Path is the page's path and query, where the token form returns to.
	Path   string
	Now    time.Time
	Notice string
	Error  *httpserver.Error
	Data   any
}

func (c *Console) newPage(r *http.Request, title, nav string, data any) *page {
	return &page{Title: title, Nav: nav, HasToken: adminToken(r) != "", Path: r.URL.RequestURI(), Now: c.cfg.Now().UTC(), Data: data}
}

func (c *Console) refreshing(p *page) *page {
	p.Refresh = int(math.Ceil(c.cfg.Refresh.Seconds()))
	return p
}

// render writes the page with status, rendered in full before any of it
// is sent, so that a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.Error != nil && p.Error.Status == http.StatusUnauthorized {
		p.HasToken = false // the token was refused, and is forgotten
	}
	t, ok := c.pages[name]
	if !ok {
		panic("console: no page template " + name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows err on the error page: its status and message if it is an
// *httpserver.Error (a client's mistake, a refusal), else a 500 that reveals
// nothing, the error logged.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	apiErr := c.publicError(r, err)
	p := c.newPage(r, http.StatusText(apiErr.Status), "", nil)
	p.Error = apiErr
	c.render(w, r, apiErr.Status, "error", p)
}

func (c *Console) publicError(r *http.Request, err error) *httpserver.Error {
	var apiErr *httpserver.Error
	if errors.As(apiError(err), &apiErr) {
		return apiErr
	}
	c.cfg.Logger.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &httpserver.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Something went wrong on the server; its log says what."}
}

// adminToken returns the session's admin token, or "".
func adminToken(r *http.Request) string {
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value
	}
	return ""
}

func setTokenCookie(w http.ResponseWriter, r *http.Request, value string) {
	cookie := &http.Cookie{Name: tokenCookie, Value: value, Path: ConsolePath, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
	if value == "" {
		cookie.MaxAge = -1
	}
	http.SetCookie(w, cookie)
}

// setToken keeps the admin token for the browser session and goes back to
// the page the form was on.
func (c *Console) setToken(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	if !validToken(token) {
		c.fail(w, r, httpserver.BadField("token", "The admin token must be 1 to 512 printable ASCII characters, without spaces, quotes, commas, semicolons or backslashes."))
		return
	}
	setTokenCookie(w, r, token)
	http.Redirect(w, r, returnPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// validToken says whether token can be kept in a cookie as it is.
func validToken(token string) bool {
	if token == "" || len(token) > 512 {
		return false
	}
	for _, b := range []byte(token) {
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`";,\`, b) >= 0 {
			return false
		}
	}
	return true
}

func (c *Console) forgetToken(w http.ResponseWriter, r *http.Request) {
	setTokenCookie(w, r, "")
	http.Redirect(w, r, returnPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// returnPath is next if it is a console path, else the overview: a form
// cannot send the browser elsewhere.
func returnPath(next string) string {
	if strings.HasPrefix(next, ConsolePath) && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return ConsolePath
}

// requireToken checks the session's token against the console's own admin
// token, for the console's own actions; it writes the refusal and returns
// false if it does not match.
func (c *Console) requireToken(w http.ResponseWriter, r *http.Request) bool {
	if c.cfg.AdminToken == "" {
		c.fail(w, r, &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "admin_disabled",
			Message: "This action is disabled until " + c.cfg.AdminTokenVariable + " is set on the order service."})
		return false
	}
	if !httpserver.TokenMatches(c.cfg.AdminToken, adminToken(r)) {
		setTokenCookie(w, r, "")
		c.fail(w, r, &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "The admin token is missing or wrong: nothing was done. Enter the token and try again."})
		return false
	}
	return true
}

func (c *Console) service(name string) (ServiceAPI, bool) {
	for _, s := range c.cfg.Services {
		if s.Name == name {
			return s, true
		}
	}
	return ServiceAPI{}, false
}
