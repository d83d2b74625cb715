package chaos

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Event types, as stored and published (shared/contracts).
const (
	orderPlaced          = "order.OrderPlaced"
	orderPaid            = "order.OrderPaid"
	orderPaymentFailed   = "order.OrderPaymentFailed"
	orderPaymentTimedOut = "order.PaymentTimedOut"
	orderCancelled       = "order.OrderCancelled"
	orderRefundRequested = "order.RefundRequested"
	orderRefunded        = "order.OrderRefunded"
	paymentSucceeded     = "payment.PaymentSucceeded"
	paymentDeclined      = "payment.PaymentDeclined"
	paymentRefunded      = "payment.PaymentRefunded"
)

// statusAfter is the status an order's own history implies: the order
// aggregate's fold, restated so that the checker does not trust the code
// it checks.
var statusAfter = map[string]string{
	orderPlaced: "placed", orderPaid: "paid", orderPaymentFailed: "payment_failed", orderPaymentTimedOut: "payment_failed",
	orderCancelled: "cancelled", orderRefundRequested: "refund_requested", orderRefunded: "refunded",
}

// violations are the checker's findings, each counted and described.
type violations struct {
	lost, skipped, doubleCharges, doubleRefunds, outOfOrder, wrongStatus, poisoned, projections int
	details                                                                                     []string
}

func (v *violations) add(counter *int, format string, args ...any) {
	*counter++
	if len(v.details) < 50 {
		v.details = append(v.details, fmt.Sprintf(format, args...))
	}
}

func (v *violations) total() int {
	return v.lost + v.skipped + v.doubleCharges + v.doubleRefunds + v.outOfOrder + v.wrongStatus + v.poisoned + v.projections
}

// expectedStatus is where an order must end, given its payment outcome and
// whether a cancel was recorded; "" while the outcome is not there yet.
// An order the order service timed out (no outcome by its deadline) ends
// payment_failed, or refunded if a payment still lands.
func expectedStatus(order, payment []storedEvent) string {
	cancelled := count(order, orderCancelled) > 0
	timedOut := count(order, orderPaymentTimedOut) > 0
	switch {
	case count(payment, paymentSucceeded) > 0 && (cancelled || timedOut || count(order, orderRefundRequested) > 0):
		return "refunded"
	case count(payment, paymentSucceeded) > 0:
		return "paid"
	case count(payment, paymentDeclined) > 0 && cancelled:
		return "cancelled"
	case count(payment, paymentDeclined) > 0 || timedOut:
		return "payment_failed"
	}
	return ""
}

func folded(order []storedEvent) string {
	if len(order) == 0 {
		return ""
	}
	return statusAfter[order[len(order)-1].eventType]
}

// settled reports whether every order in the store has reached the status
// its payment implies: the system is quiet.
func settled(s *snapshot) bool {
	for id, order := range s.orders {
		want := expectedStatus(order, s.payments[id])
		if want == "" || folded(order) != want {
			return false
		}
	}
	return true
}

// check holds the quiet system to the client history and to itself.
// apiStatus is the status GET /v1/orders/{id} answered for each accepted order.
func check(h *history, s *snapshot, apiStatus map[string]string, records []*kgo.Record) *violations {
	v := &violations{}
	for _, id := range h.accepted {
		if len(s.orders[id]) == 0 || apiStatus[id] == "" {
			v.add(&v.lost, "order %s was accepted with 201 but is not stored (API status %q)", id, apiStatus[id])
		} else if apiStatus[id] != folded(s.orders[id]) {
			v.add(&v.wrongStatus, "order %s: API says %s, its events say %s", id, apiStatus[id], folded(s.orders[id]))
		}
	}
	for id := range h.cancelled {
		if count(s.orders[id], orderCancelled)+count(s.orders[id], orderRefundRequested) == 0 {
			v.add(&v.lost, "order %s: the cancel was accepted with 200 but is not in its history", id)
		}
	}
	for _, id := range sortedKeys(s.orders) {
		checkOrder(v, id, s)
	}
	checkTopics(v, s, records)
	if s.poisonRows > 0 {
		v.add(&v.poisoned, "the payment poison store holds %d entries", s.poisonRows)
	}
	return v
}

func checkOrder(v *violations, id string, s *snapshot) {
	order, payment := s.orders[id], s.payments[id]
	for _, stream := range [][]storedEvent{order, payment} {
		for i, e := range stream {
			if e.version != int64(i+1) {
				v.add(&v.lost, "%s: stream version %d where %d was due", e.stream, e.version, i+1)
			}
		}
	}
	outcomes := count(payment, paymentSucceeded) + count(payment, paymentDeclined)
	switch {
	case outcomes == 0:
		v.add(&v.skipped, "order %s: no payment outcome", id)
	case outcomes > 1 || s.charges[id] > 1 || count(order, orderPaid) > 1:
		v.add(&v.doubleCharges, "order %s: %d outcomes, %d gateway charges, %d OrderPaid", id, outcomes, s.charges[id], count(order, orderPaid))
	}
	if outcomes > 0 && s.charges[id] != 1 {
		v.add(&v.skipped, "order %s: a payment outcome but %d gateway charges", id, s.charges[id])
	}
	refundsRequested := count(order, orderRefundRequested)
	switch {
	case refundsRequested > 1 || count(payment, paymentRefunded) > 1 || s.refunds[id] > 1 || count(order, orderRefunded) > 1:
		v.add(&v.doubleRefunds, "order %s: %d refunds requested, %d PaymentRefunded, %d gateway refunds, %d OrderRefunded",
			id, refundsRequested, count(payment, paymentRefunded), s.refunds[id], count(order, orderRefunded))
	case refundsRequested != s.refunds[id] || refundsRequested != count(payment, paymentRefunded) || refundsRequested != count(order, orderRefunded):
		v.add(&v.skipped, "order %s: %d refunds requested, %d gateway refunds, %d PaymentRefunded, %d OrderRefunded",
			id, refundsRequested, s.refunds[id], count(payment, paymentRefunded), count(order, orderRefunded))
	}
	if want, got := expectedStatus(order, payment), folded(order); want != got {
		v.add(&v.wrongStatus, "order %s ends %s, its history implies %s", id, got, want)
	}
}

// checkTopics proves every stored event reached its topic at least once and,
// per stream, in stream_version order: a record may repeat one already seen
// (at-least-once), but a first appearance must be the next version, and a
// stream's records must all be in one partition.
func checkTopics(v *violations, s *snapshot, records []*kgo.Record) {
	type progress struct {
		partition int32
		next      int64
	}
	seen := map[string]bool{}
	streams := map[string]*progress{}
	for _, r := range records {
		if r.Topic == orderPoisonTopic || r.Topic == paymentPoisonTopic {
			v.add(&v.poisoned, "%s holds a record: %s", r.Topic, header(r, "reason_poisoned"))
			continue
		}
		id := header(r, "event_id")
		if seen[id] {
			continue
		}
		seen[id] = true
		version, _ := strconv.ParseInt(header(r, "stream_version"), 10, 64)
		p := streams[string(r.Key)]
		if p == nil {
			p = &progress{partition: r.Partition, next: 1}
			streams[string(r.Key)] = p
		}
		if r.Partition != p.partition || version != p.next {
			v.add(&v.outOfOrder, "%s: %s version %d first seen in partition %d where version %d in partition %d was due",
				r.Topic, r.Key, version, r.Partition, p.next, p.partition)
		}
		p.next = version + 1
	}
	for _, streamsOf := range []map[string][]storedEvent{s.orders, s.payments} {
		for _, id := range sortedKeys(streamsOf) {
			for _, e := range streamsOf[id] {
				if !seen[e.id] {
					v.add(&v.lost, "%s version %d (%s) never reached Kafka", e.stream, e.version, e.eventType)
				}
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
