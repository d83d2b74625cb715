package ports_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/outbox"
)

// live bounds waits for what the pipeline does (the projector, the
// forwarder): readers wait for every transaction open on the server, and
// other packages' tests hold some.
const live = 60 * time.Second

const (
	consoleToken = "order-secret"
	paymentToken = "payment-secret"
	jaegerURL    = "http://jaeger.test:16686"
	scriptSKU    = `<script>alert("x")</script>`
)

// consoleEnv is the order API with its console over a real database, a
// real (development) Kafka broker and the live projector, beside a stand-in
// for the payment service's API (the order module never imports the
// payment service; the browser test runs the real one).
type consoleEnv struct {
	t       *testing.T
	srv     *httptest.Server
	pool    *pgxpool.Pool
	brokers []string
	payment *paymentAPI
	client  *http.Client
}

// newConsole starts the console; more adds routes to the order API.
func newConsole(t *testing.T, adminToken string, more ...func(*http.ServeMux)) *consoleEnv {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	project(t, pool)
	ctx, stop := context.WithCancel(context.Background())
	replayer := projections.NewReplayer(ctx, pool, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { stop(); replayer.Wait() })

	lag, err := adapters.NewKafkaInspector(brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lag.Close)
	payment := newPaymentAPI(t)
	application := app.New(adapters.NewOrderRepository(pool, nil)).WithOrderSummaries(projections.NewSummaryReader(pool))
	var handler http.Handler
	console, err := ports.NewConsole(ports.ConsoleConfig{
		App:      application,
		Pipeline: testPipeline{StatusCounts: projections.NewStatusCounts(pool), KafkaInspector: lag, pool: pool},
		Rebuilds: replayer,
		Services: []ports.ServiceAPI{
			{Name: "order", BaseURL: "http://order", Client: ports.InProcess(func() http.Handler { return handler })},
			{Name: "payment", BaseURL: payment.srv.URL},
		},
		Payments:           "payment",
		AdminToken:         adminToken,
		AdminTokenVariable: "ORDER_ADMIN_TOKEN",
		JaegerURL:          jaegerURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := httpserver.NewRegistry()
	reg.MustRegister(outbox.LagCollector(pool, outbox.DefaultConsumerGroup))
	handler = ports.NewHTTPHandler(application, nil, "", httpserver.Ops{Registry: reg}, append(more, console.Register)...)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &consoleEnv{t: t, srv: srv, pool: pool, brokers: brokers, payment: payment, client: client}
}

// forward runs the forwarder until the test ends.
func (e *consoleEnv) forward(t *testing.T) {
	testenv.Go(t, "forwarder", func(ctx context.Context) error {
		s := outbox.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, IdlePollInterval: 100 * time.Millisecond, BatchSize: 100}
		return outbox.Run(ctx, e.pool, e.brokers, []outbox.Route{{EventTypePrefix: "order.", Topic: "order.events"}}, s, slog.New(slog.DiscardHandler), nil)
	})
}

type testPipeline struct {
	projections.StatusCounts
	*adapters.KafkaInspector
	pool *pgxpool.Pool
}

func (p testPipeline) ProjectionStatuses(ctx context.Context) ([]projections.Status, error) {
	return projections.Statuses(ctx, p.pool, projections.All)
}

type page struct {
	status int
	header http.Header
	body   string
}

func (e *consoleEnv) get(path string) page {
	e.t.Helper()
	return e.send(http.MethodGet, path, nil)
}

func (e *consoleEnv) post(path string, form url.Values) page {
	e.t.Helper()
	return e.send(http.MethodPost, path, form)
}

func (e *consoleEnv) send(method, path string, form url.Values, headers ...string) page {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.Contains(p.body, consoleToken) || strings.Contains(p.body, paymentToken) {
		e.t.Errorf("%s %s shows the admin token", method, path)
	}
	return p
}

// enterToken keeps token for the session, as the token form does.
func (e *consoleEnv) enterToken(token string) {
	e.t.Helper()
	p := e.post("/console/token", url.Values{"token": {token}, "next": {"/console/poison/payment"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/poison/payment" {
		e.t.Fatalf("POST /console/token = %d to %q, want 303 back to the page", p.status, p.header.Get("Location"))
	}
	if c := p.header.Get("Set-Cookie"); !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") || strings.Contains(c, "Expires") {
		e.t.Errorf("Set-Cookie = %q, want an HttpOnly, SameSite=Strict session cookie", c)
	}
}

func (e *consoleEnv) placeForm(t *testing.T, customer, sku string) string {
	t.Helper()
	p := e.send(http.MethodPost, "/console/orders", url.Values{"customer_id": {customer}, "currency": {"EUR"}, "sku": {sku}, "quantity": {"2"}, "unit_price": {"1250"}},
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/orders/") {
		t.Fatalf("POST /console/orders = %d to %q: %s", p.status, loc, p.body)
	}
	return strings.TrimPrefix(loc, "/console/orders/")
}

func (e *consoleEnv) countEvents(t *testing.T) int {
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantStatus(t *testing.T, what string, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("%s = %d, want %d: %s", what, p.status, status, text(p.body))
	}
	if ct := p.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s: Content-Type %q, want HTML", what, ct)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Errorf("%s does not contain %q: %s", what, c, text(p.body))
		}
	}
}

var tags = regexp.MustCompile(`(?s)<[^>]*>|\s+`)

// text is a page's text, for messages.
func text(html string) string {
	if i := strings.Index(html, "<main"); i >= 0 {
		html = html[i:]
	}
	return strings.TrimSpace(tags.ReplaceAllString(html, " "))
}

func TestConsolePlaceOrderFormAndOrderPage(t *testing.T) {
	e := newConsole(t, consoleToken)
	id := e.placeForm(t, "alice", scriptSKU)

	p := e.get("/console/orders/" + id)
	wantStatus(t, "the order page", p, http.StatusOK, "order.OrderPlaced", `data-status="placed"`, "alice", "25.00 EUR",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "no payment yet")
	if strings.Contains(p.body, scriptSKU) || strings.Contains(p.body, "<script>alert") {
		t.Errorf("the order page has the payload's <script> as markup, not text")
	}
	if !strings.Contains(p.body, `href="`+jaegerURL+`/trace/0af7651916cd43dd8448eb211c80319c"`) {
		t.Errorf("the order page links no trace in Jaeger: %s", text(p.body))
	}
	if !strings.Contains(p.body, "order.events</code>: not there yet") {
		t.Errorf("the order page places an event in Kafka before anything forwarded it: %s", text(p.body))
	}

	// Once the forwarder has sent the event, the page says where it is.
	e.forward(t)
	testenv.Eventually(t, live, "the event's place in Kafka", func() bool {
		return regexp.MustCompile(`data-kafka="order.events">topic <code>order.events</code>, partition \d, offset 0<`).MatchString(e.get("/console/orders/" + id).body)
	})

	// The payment service knows the payment now, and its forwarder sent
	// the payment's events (its key is the payment's stream, by the
	// contract), after a record of another payment.
	e.payment.addPayment(id)
	kc, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	for _, r := range []*kgo.Record{
		{Key: []byte("payment-other"), Headers: []kgo.RecordHeader{{Key: "event_type", Value: []byte("payment.PaymentRequested")}}},
		{Key: []byte("payment-" + id), Headers: []kgo.RecordHeader{{Key: "event_type", Value: []byte("payment.PaymentRequested")}}},
		{Key: []byte("payment-" + id), Headers: []kgo.RecordHeader{{Key: "event_type", Value: []byte("payment.PaymentSucceeded")}}},
	} {
		r.Topic, r.Partition = "payment.events", 3
		if err := kc.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p = e.get("/console/orders/" + id)
	wantStatus(t, "the order page with its payment", p, http.StatusOK, `id="payment-status">succeeded`, "payment.PaymentSucceeded",
		`data-kafka="payment.events">topic <code>payment.events</code>, partition 3, offset 1<`,
		`data-kafka="payment.events">topic <code>payment.events</code>, partition 3, offset 2<`)

	// The list shows it, newest first, once the read model has it.
	testenv.Eventually(t, live, "the order in the list", func() bool {
		return strings.Contains(e.get("/console/orders").body, "/console/orders/"+id)
	})
	wantStatus(t, "orders filtered by customer", e.get("/console/orders?customer_id=alice&status=placed"), http.StatusOK, id)
	if p := e.get("/console/orders?customer_id=bob&status="); strings.Contains(p.body, id) || p.status != http.StatusOK {
		t.Errorf("bob's orders = %d and show alice's order", p.status)
	}

	for _, c := range []struct{ path, field string }{
		{"/console/orders/not-a-uuid", "id"},
		{"/console/orders?status=lost", "status"},
		{"/console/orders?limit=1000", "limit"},
		{"/console/orders?cursor=zzz", "cursor"},
		{"/console/orders?colour=red", "colour"},
	} {
		wantStatus(t, c.path, e.get(c.path), http.StatusBadRequest, "<code>"+c.field+"</code>")
	}
	wantStatus(t, "an unknown order", e.get("/console/orders/01a23092-340a-744c-96f8-3350a6a94bc9"), http.StatusNotFound, "no order with this id")
}

func TestConsoleOrderListPages(t *testing.T) {
	e := newConsole(t, consoleToken)
	var ids []string
	for range 3 {
		ids = append(ids, e.placeForm(t, "pat", "pen"))
	}
	testenv.Eventually(t, live, "three orders listed", func() bool {
		return strings.Count(e.get("/console/orders?customer_id=pat").body, `data-status="placed"`) == 3
	})
	first := e.get("/console/orders?customer_id=pat&limit=2")
	next := regexp.MustCompile(`href="/console/orders\?([^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil || !strings.Contains(first.body, ids[2]) || !strings.Contains(first.body, ids[1]) || strings.Contains(first.body, ids[0]) {
		t.Fatalf("first page of 2 should hold the two newest orders and a next link: %s", text(first.body))
	}
	second := e.get("/console/orders?" + html.UnescapeString(next[1]))
	if !strings.Contains(second.body, ids[0]) || strings.Contains(second.body, ids[1]) || strings.Contains(second.body, `rel="next"`) {
		t.Errorf("second page should hold the oldest order only, and no next link: %s", text(second.body))
	}
}

func TestConsolePlaceOrderFormRejectsBadInput(t *testing.T) {
	e := newConsole(t, consoleToken)
	valid := url.Values{"customer_id": {"c"}, "currency": {"EUR"}, "sku": {"a"}, "quantity": {"1"}, "unit_price": {"100"}}
	for _, c := range []struct{ name, field, value, wantField string }{
		{"zero quantity", "quantity", "0", "items[0].quantity"},
		{"quantity not a number", "quantity", "two", "items[0].quantity"},
		{"price not a number", "unit_price", "9.99", "items[0].unit_price"},
		{"no customer", "customer_id", "", "customer_id"},
		{"bad currency", "currency", "EURO", "currency"},
		{"html in a field", "currency", "<b>x</b>", "currency"},
	} {
		form := url.Values{}
		for k, v := range valid {
			form[k] = v
		}
		form.Set(c.field, c.value)
		p := e.post("/console/orders", form)
		wantStatus(t, c.name, p, http.StatusBadRequest, "Not placed:", "<code>"+c.wantField+"</code>")
		if strings.Contains(p.body, "<b>x</b>") {
			t.Errorf("%s: the form shows the input as markup", c.name)
		}
	}
	if n := e.countEvents(t); n != 0 {
		t.Errorf("%d events stored after bad input, want none", n)
	}
}

func TestConsoleOverviewShowsThePipeline(t *testing.T) {
	e := newConsole(t, consoleToken)
	e.placeForm(t, "alice", "book")
	// The payment group has read one of three records on a partition.
	kc, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic("order.events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx := context.Background()
	for range 3 {
		if err := kc.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "order.events", Partition: 1, At: 1, LeaderEpoch: -1})
	if _, err := kadm.NewClient(kc).CommitOffsets(ctx, "payment", offsets); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, live, "the overview with the order counted", func() bool {
		return strings.Contains(e.get("/console/").body, `<a href="/console/orders?status=placed">1</a>`)
	})
	p := e.get("/console/")
	wantStatus(t, "the overview", p, http.StatusOK,
		`data-lag="payment/order.events">2<`, // from Kafka
		"group payment lag</dt><dd>2 records <strong class=\"flag\">behind</strong>",
		`data-outbox="payment">0<`, // the payment service's /metrics
		"payment poison queue</dt><dd><a href=\"/console/poison/payment\">2 new</a>",
		`data-outbox="order">1<`, // its own /metrics: nothing forwards here
		"order_summaries", "order_daily_stats", `data-refresh="3"`)
	if strings.Contains(p.body, "order poison queue</dt><dd><a") {
		t.Errorf("the overview links an order poison queue the order API does not have")
	}

	e.payment.down()
	wantStatus(t, "the overview with the payment service down", e.get("/console/"), http.StatusOK, "payment outbox</dt><dd>unknown: payment does not answer")
}

func TestConsolePoisonQueueNeedsTheServicesToken(t *testing.T) {
	e := newConsole(t, consoleToken)

	queues := e.get("/console/poison")
	wantStatus(t, "the poison queues", queues, http.StatusOK, `href="/console/poison/payment"`)
	if strings.Contains(queues.body, `href="/console/poison/order"`) {
		t.Errorf("this order API has no poison queue, but the console lists one")
	}

	// Without a token: the form asking for it, and no admin call.
	wantStatus(t, "the list without a token", e.get("/console/poison/payment"), http.StatusOK, `name="token"`)
	if n := e.payment.adminCalls(); n != 0 {
		t.Errorf("%d admin calls without a token", n)
	}
	wantStatus(t, "requeue without a token", e.post("/console/poison/payment/1-0/requeue", url.Values{}), http.StatusUnauthorized)

	// A wrong token is refused by the service, and forgotten: nothing changes.
	e.enterToken("wrong")
	p := e.post("/console/poison/payment/1-0/requeue", url.Values{})
	wantStatus(t, "requeue with a wrong token", p, http.StatusUnauthorized, "refused the admin token: nothing was done", `name="token"`)
	if c := p.header.Get("Set-Cookie"); !strings.Contains(c, "Max-Age=0") {
		t.Errorf("a refused token is kept: Set-Cookie %q", c)
	}
	if s := e.payment.status("1-0"); s != "new" {
		t.Errorf("entry 1-0 is %s after a refused requeue, want new", s)
	}

	e.enterToken(paymentToken)
	list := e.get("/console/poison/payment")
	wantStatus(t, "the list", list, http.StatusOK, `data-entry="1-0"`, `data-status="new"`, "order.events 2/7", "Forget it")
	entry := e.get("/console/poison/payment/1-0")
	wantStatus(t, "the entry", entry, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;", "schema_version", "payload is not valid")
	if strings.Contains(entry.body, "<script>alert(1)") {
		t.Errorf("the entry page has the payload's <script> as markup")
	}

	wantStatus(t, "a dry run", e.post("/console/poison/payment/1-0/requeue", url.Values{"dry_run": {"1"}}), http.StatusOK, "Dry run: 1-0 would be published to order.events")
	if s := e.payment.status("1-0"); s != "new" {
		t.Errorf("entry 1-0 is %s after a dry run, want new", s)
	}
	wantStatus(t, "discard without a reason", e.post("/console/poison/payment/1-0/discard", url.Values{"reason": {" "}}), http.StatusBadRequest, "<code>reason</code>")
	wantStatus(t, "requeue", e.post("/console/poison/payment/1-0/requeue", url.Values{}), http.StatusOK, "Requeued 1-0 to order.events 2/9.", `id="entry-status" data-status="requeued"`)
	wantStatus(t, "requeue again", e.post("/console/poison/payment/1-0/requeue", url.Values{}), http.StatusOK, "1-0 was requeued already: nothing was done.")
	wantStatus(t, "requeue all, dry run", e.post("/console/poison/payment/requeue-all", url.Values{"dry_run": {"1"}}), http.StatusOK, "Dry run of requeue all", "2-0 would be published")
	wantStatus(t, "discard", e.post("/console/poison/payment/2-0/discard", url.Values{"reason": {"test data"}, "by": {"ann"}}), http.StatusOK, "Discarded 2-0.", "by ann", "test data")
	wantStatus(t, "requeue all", e.post("/console/poison/payment/requeue-all", url.Values{}), http.StatusOK, "Requeue all: there were no new entries; nothing was done.", `No new entries.`)
	wantStatus(t, "an unknown entry", e.get("/console/poison/payment/9-9"), http.StatusNotFound, "no poison-queue entry with this id")
	wantStatus(t, "an unknown service", e.get("/console/poison/nobody"), http.StatusNotFound)
	wantStatus(t, "a bad status", e.get("/console/poison/payment?status=lost"), http.StatusBadRequest, "<code>status</code>")
	if got := e.payment.lastBy(); got != "ann" {
		t.Errorf("the discard was sent by %q, want ann", got)
	}

	if p := e.post("/console/token/forget", url.Values{"next": {"//elsewhere.example"}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" ||
		!strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("forget = %d to %q, Set-Cookie %q; want the cookie cleared and the overview, not another site", p.status, p.header.Get("Location"), p.header.Get("Set-Cookie"))
	}
	for _, bad := range []string{"a b", "tök", "a;b", "", strings.Repeat("x", 513)} {
		if p := e.post("/console/token", url.Values{"token": {bad}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "<code>token</code>") {
			t.Errorf("token %q = %d, want a 400 naming the field", bad, p.status)
		}
	}
}

// When the order API has a poison queue too (the payment service's API, in
// the order service), the console shows it beside the payment one.
func TestConsoleShowsTheOrderPoisonQueueOnceItsAPIHasOne(t *testing.T) {
	var asked atomic.Value // the Authorization header of the last call
	e := newConsole(t, consoleToken, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/admin/poison", func(w http.ResponseWriter, r *http.Request) {
			asked.Store(r.Header.Get("Authorization"))
			if r.Header.Get("Authorization") != "Bearer "+consoleToken {
				httpserver.WriteError(w, r, &httpserver.Error{Status: 401, Code: "unauthorized", Message: "a valid admin token is required"})
				return
			}
			httpserver.WriteJSON(w, 200, map[string]any{"entries": []any{}})
		})
	})
	wantStatus(t, "the poison queues", e.get("/console/poison"), http.StatusOK, `href="/console/poison/order"`, `href="/console/poison/payment"`)
	e.enterToken(consoleToken)
	wantStatus(t, "the order poison queue", e.get("/console/poison/order"), http.StatusOK, "No new entries.")
	if got := asked.Load(); got != "Bearer "+consoleToken {
		t.Errorf("the order API was asked with %q, want the session's token", got)
	}
}

func TestConsoleRebuildsAProjection(t *testing.T) {
	e := newConsole(t, consoleToken)
	e.placeForm(t, "alice", "book")

	wantStatus(t, "rebuild without a token", e.post("/console/projections/order_summaries/rebuild", url.Values{}), http.StatusUnauthorized, "nothing was done")
	e.enterToken("wrong")
	wantStatus(t, "rebuild with a wrong token", e.post("/console/projections/order_summaries/rebuild", url.Values{}), http.StatusUnauthorized, "nothing was done")
	if runs := e.runs(t); runs != 0 {
		t.Errorf("%d rebuilds recorded after refusals, want none", runs)
	}
	e.enterToken(consoleToken)
	// The rebuild is to find the order's event.
	testenv.WaitEventsReadable(t, e.pool)
	wantStatus(t, "rebuild of an unknown projection", e.post("/console/projections/nothing/rebuild", url.Values{}), http.StatusNotFound, "unknown projection")

	p := e.post("/console/projections/order_summaries/rebuild", url.Values{})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/projections" {
		t.Fatalf("rebuild = %d to %q, want 303 to the projections page: %s", p.status, p.header.Get("Location"), text(p.body))
	}
	testenv.Eventually(t, live, "the rebuild done", func() bool {
		return strings.Contains(e.get("/console/projections").body, `data-rebuild="done"`)
	})
	wantStatus(t, "the projections page", e.get("/console/projections"), http.StatusOK, "<strong>done</strong>: 1 events")

	// A run another replica is going through (its row moving) refuses a second.
	if _, err := e.pool.Exec(context.Background(), `UPDATE projection_replays SET finished_at = NULL, stage = 'rebuilding', events = 42, total = 100, updated_at = now()`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "a second rebuild", e.post("/console/projections/order_summaries/rebuild", url.Values{}), http.StatusConflict, "already running", `data-rebuild="running"`,
		"rebuilding, 42 of about 100 events", `<progress max="100" value="42">`, `data-refresh="3"`)
	// One whose replica stopped answering long ago is taken over.
	if _, err := e.pool.Exec(context.Background(), `UPDATE projection_replays SET updated_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "a stale run", e.get("/console/projections"), http.StatusOK, "stopped answering")
	if p := e.post("/console/projections/order_summaries/rebuild", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("rebuild after a stale run = %d, want 303: %s", p.status, text(p.body))
	}
	testenv.Eventually(t, live, "the second rebuild done", func() bool {
		return strings.Contains(e.get("/console/projections").body, `data-rebuild="done"`)
	})
}

func (e *consoleEnv) runs(t *testing.T) int {
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM projection_replays`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConsoleRebuildIsDisabledWithoutAToken(t *testing.T) {
	e := newConsole(t, "")
	e.enterToken("anything")
	wantStatus(t, "rebuild", e.post("/console/projections/order_summaries/rebuild", url.Values{}), http.StatusServiceUnavailable, "ORDER_ADMIN_TOKEN")
}

func TestConsoleRefusesCrossOriginForms(t *testing.T) {
	e := newConsole(t, consoleToken)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/orders", strings.NewReader("customer_id=c&currency=EUR&sku=a&quantity=1&unit_price=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || e.countEvents(t) != 0 {
		t.Errorf("a cross-site form post = %d with %d events stored, want 403 and none", resp.StatusCode, e.countEvents(t))
	}
}

func TestConsoleServesItsAssetsAndNotFound(t *testing.T) {
	e := newConsole(t, consoleToken)
	for _, path := range []string{"/console/static/console.css", "/console/static/console.js"} {
		if p := e.get(path); p.status != http.StatusOK || len(p.body) < 100 {
			t.Errorf("GET %s = %d, %d bytes", path, p.status, len(p.body))
		}
	}
	wantStatus(t, "an unknown page", e.get("/console/nothing"), http.StatusNotFound, "no console page")
	if p := e.get("/console"); p.status != http.StatusMovedPermanently || p.header.Get("Location") != "/console/" {
		t.Errorf("GET /console = %d to %q, want a redirect to /console/", p.status, p.header.Get("Location"))
	}
	wantStatus(t, "the projections page", e.get("/console/projections"), http.StatusOK, "Rebuild order_summaries", "Rebuild order_daily_stats")
}

// paymentAPI stands in for the payment service's API, in the shape of
// payment/ports (the admin API's JSON and bearer token, /metrics,
// /v1/payments/{order_id}).
type paymentAPI struct {
	srv *httptest.Server
	mu  sync.Mutex
	// entries by id; admin counts the calls that passed the token check.
	entries  map[string]map[string]any
	payments map[string]bool
	paidAt   time.Time
	admin    int
	by       string
	isDown   bool
}

func newPaymentAPI(t *testing.T) *paymentAPI {
	a := &paymentAPI{payments: map[string]bool{}, entries: map[string]map[string]any{}}
	for i, id := range []string{"1-0", "2-0"} {
		a.entries[id] = map[string]any{
			"id": id, "status": "new", "poisoned_at": "2026-12-01T07:00:00Z", "key": "order-x", "handler": "charge_order",
			"reason": "order.OrderPlaced payload is not valid: unexpected end of JSON input", "event_type": "order.OrderPlaced",
			"origin":        map[string]any{"topic": "order.events", "partition": 2, "offset": 7 + i},
			"poison_record": map[string]any{"topic": "payment.poison", "partition": 1 + i, "offset": 0},
			"metadata":      map[string]string{"schema_version": "2", "event_type": "order.OrderPlaced"},
			"payload":       `{"oops": "<script>alert(1)</script>`,
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		n := 0
		for _, e := range a.entries {
			if e["status"] == "new" {
				n++
			}
		}
		_, _ = io.WriteString(w, "# TYPE payment_poison_queue_depth gauge\npayment_poison_queue_depth "+strconv.Itoa(n)+"\n"+
			"# TYPE outbox_unforwarded_events gauge\noutbox_unforwarded_events{group=\"forwarder\"} 0\n"+
			"# TYPE outbox_oldest_unforwarded_event_age_seconds gauge\noutbox_oldest_unforwarded_event_age_seconds{group=\"forwarder\"} 0\n")
	})
	mux.HandleFunc("GET /v1/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.payments[r.PathValue("id")] {
			httpserver.WriteError(w, r, &httpserver.Error{Status: 404, Code: "not_found", Message: "no payment for this order"})
			return
		}
		httpserver.WriteJSON(w, 200, map[string]any{"order_id": r.PathValue("id"), "status": "succeeded", "amount": 2500, "currency": "EUR",
			"charge_id": "ch-1", "history": []map[string]any{{"type": "payment.PaymentRequested", "at": a.paidAt}, {"type": "payment.PaymentSucceeded", "at": a.paidAt}}})
	})
	admin := func(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+paymentToken {
				httpserver.WriteError(w, r, &httpserver.Error{Status: 401, Code: "unauthorized", Message: "a valid admin token is required"})
				return
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			a.admin++
			h(w, r)
		}
	}
	entry := func(w http.ResponseWriter, r *http.Request) map[string]any {
		e, ok := a.entries[r.PathValue("id")]
		if !ok {
			httpserver.WriteError(w, r, &httpserver.Error{Status: 404, Code: "not_found", Message: "no poison-queue entry with this id"})
		}
		return e
	}
	body := func(r *http.Request) map[string]any {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		return b
	}
	act := func(e map[string]any, req map[string]any, result, to string) map[string]any {
		if e["status"] != "new" {
			return map[string]any{"id": e["id"], "result": "unchanged", "entry": e}
		}
		if req["dry_run"] == true {
			return map[string]any{"id": e["id"], "result": "would_requeue", "entry": e}
		}
		e["status"], e["changed_by"] = to, req["by"]
		a.by, _ = req["by"].(string)
		if to == "requeued" {
			e["requeued_to"] = map[string]any{"topic": "order.events", "partition": 2, "offset": 9}
		} else {
			e["change_reason"] = req["reason"]
		}
		return map[string]any{"id": e["id"], "result": result, "entry": e}
	}
	mux.HandleFunc("GET /v1/admin/poison", admin(func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		if status != "new" && status != "requeued" && status != "discarded" && status != "all" {
			httpserver.WriteError(w, r, httpserver.BadField("status", "must be new, requeued, discarded or all"))
			return
		}
		list := []map[string]any{}
		for _, e := range a.entries {
			if status == "all" || e["status"] == status {
				list = append(list, e)
			}
		}
		httpserver.WriteJSON(w, 200, map[string]any{"entries": list})
	}))
	mux.HandleFunc("GET /v1/admin/poison/{id}", admin(func(w http.ResponseWriter, r *http.Request) {
		if e := entry(w, r); e != nil {
			httpserver.WriteJSON(w, 200, e)
		}
	}))
	mux.HandleFunc("POST /v1/admin/poison/{id}/requeue", admin(func(w http.ResponseWriter, r *http.Request) {
		if e := entry(w, r); e != nil {
			httpserver.WriteJSON(w, 200, act(e, body(r), "requeued", "requeued"))
		}
	}))
	mux.HandleFunc("POST /v1/admin/poison/{id}/discard", admin(func(w http.ResponseWriter, r *http.Request) {
		if e := entry(w, r); e != nil {
			httpserver.WriteJSON(w, 200, act(e, body(r), "discarded", "discarded"))
		}
	}))
	mux.HandleFunc("POST /v1/admin/poison/requeue-all", admin(func(w http.ResponseWriter, r *http.Request) {
		req := body(r)
		outcomes := []map[string]any{}
		for _, e := range a.entries {
			if e["status"] == "new" {
				outcomes = append(outcomes, act(e, req, "requeued", "requeued"))
			}
		}
		httpserver.WriteJSON(w, 200, map[string]any{"outcomes": outcomes})
	}))
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		down := a.isDown
		a.mu.Unlock()
		if down {
			// As a stopped service: the connection goes away unanswered.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *paymentAPI) addPayment(id string) {
	a.mu.Lock()
	a.payments[id], a.paidAt = true, time.Now().UTC()
	a.mu.Unlock()
}
func (a *paymentAPI) down()           { a.mu.Lock(); a.isDown = true; a.mu.Unlock() }
func (a *paymentAPI) adminCalls() int { a.mu.Lock(); defer a.mu.Unlock(); return a.admin }
func (a *paymentAPI) lastBy() string  { a.mu.Lock(); defer a.mu.Unlock(); return a.by }
func (a *paymentAPI) status(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entries[id]["status"].(string)
}
