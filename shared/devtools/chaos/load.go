package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// The load's mix: every fifth order is above the gateway's approve limit
// (declined), every third approved one is cancelled once it is paid (a
// refund), and every seventh is cancelled at once, usually before its
// payment lands (cancelled, or refunded when the charge arrives after).
const (
	declinedAmount = 50_000
	approveLimit   = 10_000
)

// history is what the clients saw: the orders accepted with 201 and the
// cancels accepted with 200. The checker holds the system to it.
type history struct {
	mu        sync.Mutex
	accepted  []string
	cancelled map[string]bool
	// unanswered counts orders no replica accepted (every attempt failed
	// during a fault); they may or may not exist, and are checked like any
	// other order found in the store.
	unanswered int
}

// client talks to the order replicas like a careful user: every POST
// carries an Idempotency-Key, so a request that timed out during a crash is
// retried, on the other replica, without placing the order twice.
type client struct {
	urls []string
	http http.Client
	run  string
}

func (c *client) post(ctx context.Context, attempt int, path, key, body string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urls[attempt%len(c.urls)]+path, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// retry calls try on successive replicas until it says done or a minute
// passes: long enough to outlast any fault the controller injects.
func retry(ctx context.Context, try func(attempt int) (done bool)) bool {
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; time.Now().Before(deadline) && ctx.Err() == nil; attempt++ {
		if try(attempt) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func (c *client) place(ctx context.Context, i int) (string, bool) {
	amount := 1_000 + int64(i%9)*1_000
	if i%5 == 4 {
		amount = declinedAmount
	}
	body := fmt.Sprintf(`{"customer_id":"chaos-%d","currency":"EUR","items":[{"sku":"sku-%d","quantity":1,"unit_price":%d}]}`, i, i%13, amount)
	var id string
	ok := retry(ctx, func(attempt int) bool {
		status, out, err := c.post(ctx, i+attempt, "/v1/orders", fmt.Sprintf("%s-%d", c.run, i), body)
		if err != nil || status >= 500 {
			return false
		}
		id, _ = out["order_id"].(string)
		return (status == http.StatusCreated || status == http.StatusOK) && id != ""
	})
	return id, ok
}

func (c *client) status(ctx context.Context, attempt int, id string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.urls[attempt%len(c.urls)]+"/v1/orders/"+id, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var o struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&o)
	return o.Status
}

// cancel cancels the order, when paid if afterPayment. A retried cancel
// whose first attempt did land gets 409 "already cancelled": that counts as
// accepted.
func (c *client) cancel(ctx context.Context, id string, afterPayment bool) bool {
	if afterPayment {
		paid := retry(ctx, func(attempt int) bool {
			s := c.status(ctx, attempt, id)
			return s == "paid"
		})
		if !paid {
			return false
		}
	}
	accepted := false
	retry(ctx, func(attempt int) bool {
		status, _, err := c.post(ctx, attempt, "/v1/orders/"+id+"/cancel", "", `{"reason":"chaos"}`)
		switch {
		case err != nil || status >= 500:
			return false
		case status == http.StatusOK:
			accepted = true
		case status == http.StatusConflict && attempt > 0:
			s := c.status(ctx, attempt, id)
			accepted = s == "cancelled" || s == "refund_requested" || s == "refunded"
		}
		return true
	})
	return accepted
}

// drive places cfg.Orders orders, one every interval, cancelling some, and
// returns when every client request has been answered or given up.
func drive(ctx context.Context, cfg Config, urls []string, run string) *history {
	h := &history{cancelled: map[string]bool{}}
	c := &client{urls: urls, http: http.Client{Timeout: 5 * time.Second}, run: run}
	var wg sync.WaitGroup
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for i := range cfg.Orders {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, ok := c.place(ctx, i)
			h.mu.Lock()
			if ok {
				h.accepted = append(h.accepted, id)
			} else {
				h.unanswered++
			}
			h.mu.Unlock()
			immediately := i%7 == 0
			afterPayment := i%3 == 0 && i%5 != 4 && !immediately
			if !ok || !(immediately || afterPayment) {
				return
			}
			if c.cancel(ctx, id, afterPayment) {
				h.mu.Lock()
				h.cancelled[id] = true
				h.mu.Unlock()
			}
		}()
		<-tick.C
	}
	wg.Wait()
	return h
}
