package chaos

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/postgres"
)

// Run runs the whole suite once: fresh databases, the system, load and
// faults, then the checks. An error means the run could not be carried out;
// what it found is in the report.
func Run(ctx context.Context, cfg Config) (report *Report, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	run := "chaos_" + randomHex(4)
	orderDB, paymentDB, drop, err := createDatabases(ctx, cfg.ServerURL, run)
	if err != nil {
		return nil, err
	}
	// A failed run keeps its databases for the post-mortem.
	defer func() {
		if report != nil && report.OK() {
			drop()
		} else {
			fmt.Fprintf(cfg.Log, "databases kept: %s, %s\n", orderDB, paymentDB)
		}
	}()
	sys, err := launch(cfg, orderDB, paymentDB)
	if err != nil {
		return nil, err
	}
	defer sys.stop()
	fmt.Fprintf(cfg.Log, "system up: Kafka (%s) %v, order %v, logs in %s\n", cfg.Kafka, sys.brokers, sys.orderURLs, cfg.WorkDir)

	ctrl := &controller{cfg: cfg, sys: sys, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 7)), injected: map[string]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ctrl.run(ctx, time.Duration(cfg.Orders)*cfg.Interval) }()
	started := time.Now()
	h := drive(ctx, cfg, sys.orderURLs, run)
	wg.Wait()
	lastFault := ctrl.lastEnd
	if lastFault.IsZero() {
		lastFault = time.Now()
	}
	fmt.Fprintf(cfg.Log, "load done after %s: %d accepted, %d unanswered; waiting for quiet\n",
		time.Since(started).Round(time.Millisecond), len(h.accepted), h.unanswered)

	return verify(ctx, cfg, sys, h, ctrl, lastFault)
}

// verify waits until the system is quiet, then checks everything.
func verify(ctx context.Context, cfg Config, sys *system, h *history, ctrl *controller, lastFault time.Time) (*Report, error) {
	orderPool, err := postgres.Connect(ctx, sys.orderDB)
	if err != nil {
		return nil, err
	}
	defer orderPool.Close()
	paymentPool, err := postgres.Connect(ctx, sys.paymentDB)
	if err != nil {
		return nil, err
	}
	defer paymentPool.Close()

	snap, quiet := waitQuiet(ctx, orderPool, paymentPool, cfg.QuiesceTimeout)
	quiesce := time.Since(lastFault)
	if snap == nil {
		return nil, fmt.Errorf("chaos: cannot read the databases")
	}
	want := map[string]bool{}
	for _, streams := range []map[string][]storedEvent{snap.orders, snap.payments} {
		for _, stream := range streams {
			for _, e := range stream {
				want[e.id] = true
			}
		}
	}
	records, err := readTopics(sys.brokers, want, time.Minute)
	if err != nil {
		return nil, err
	}
	v := check(h, snap, apiStatuses(ctx, sys.orderURLs[0], h.accepted), records)
	if err := checkProjections(ctx, v, orderPool, sys.orders[0].spec, 30*time.Second); err != nil {
		return nil, err
	}
	if !quiet {
		// Whatever is stuck is still stuck now: keep its stacks for the post-mortem.
		for _, r := range sys.services() {
			r.dumpStacks()
		}
		fmt.Fprintf(cfg.Log, "the services' goroutine stacks are at the end of their logs in %s\n", cfg.WorkDir)
	}
	r := &Report{
		Accepted: len(h.accepted), Unanswered: h.unanswered, Cancelled: len(h.cancelled), Stored: len(snap.orders),
		Faults: ctrl.injected, ControllerErrors: ctrl.failures, SelfRestarts: sys.selfExits(),
		Quiet: quiet, Quiesce: quiesce, violations: *v,
	}
	return r, nil
}

// waitQuiet polls the databases until every order has settled or timeout
// passes, and returns the last snapshot and whether it settled.
func waitQuiet(ctx context.Context, orderPool, paymentPool *pgxpool.Pool, timeout time.Duration) (*snapshot, bool) {
	deadline := time.Now().Add(timeout)
	var last *snapshot
	for {
		snap, err := readSnapshot(ctx, orderPool, paymentPool)
		if err == nil {
			last = snap
			if settled(snap) {
				return snap, true
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last, false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func apiStatuses(ctx context.Context, url string, ids []string) map[string]string {
	c := &client{urls: []string{url}, http: http.Client{Timeout: 5 * time.Second}}
	statuses := make(map[string]string, len(ids))
	for _, id := range ids {
		statuses[id] = c.status(ctx, 0, id)
	}
	return statuses
}

// createDatabases creates the run's two databases on the server and returns
// their URLs and a function that drops them.
func createDatabases(ctx context.Context, serverURL, run string) (orderDB, paymentDB string, drop func(), err error) {
	if orderDB, err = postgres.WithDatabase(serverURL, run+"_orders"); err != nil {
		return "", "", nil, err
	}
	if paymentDB, err = postgres.WithDatabase(serverURL, run+"_payments"); err != nil {
		return "", "", nil, err
	}
	for _, url := range []string{orderDB, paymentDB} {
		if err := postgres.CreateDatabase(ctx, url); err != nil {
			return "", "", nil, err
		}
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = postgres.DropDatabase(ctx, orderDB)
		_ = postgres.DropDatabase(ctx, paymentDB)
	}
	return orderDB, paymentDB, drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
