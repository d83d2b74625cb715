package kafka

import "testing"

// A consumer whose JoinGroup may wait at the coordinator longer than the
// client reads for its answer never rejoins a group that has to wait for a
// lost member (found by the chaos suite: after a broker restart the payment
// consumer timed out every 30s and consumed nothing).
func TestJoinGroupIsAnsweredWithinTheReadTimeout(t *testing.T) {
	cfg := ConsumerConfig("test")
	if 2*cfg.Consumer.Group.Rebalance.Timeout >= cfg.Net.ReadTimeout {
		t.Errorf("twice the rebalance timeout %s is not shorter than the read timeout %s", cfg.Consumer.Group.Rebalance.Timeout, cfg.Net.ReadTimeout)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
