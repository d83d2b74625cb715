package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"time"
)

// Fault kinds, as the report names them.
const (
	KillOrder       = "kill -9 order replica"
	KillPayment     = "kill -9 payment replica"
	StopBrokerTerm  = "broker stopped (SIGTERM)"
	StopBrokerKill  = "broker stopped (SIGKILL)"
	RestartPostgres = "PostgreSQL restarted"
)

// controller injects the faults one at a time at random moments spread over
// the load, and remembers when the system was last whole again.
type controller struct {
	cfg Config
	sys *system
	rnd *rand.Rand

	mu       sync.Mutex
	injected map[string]int
	failures []string
	lastEnd  time.Time
}

func (c *controller) schedule() []string {
	var kinds []string
	for range c.cfg.OrderKills {
		kinds = append(kinds, KillOrder)
	}
	for range c.cfg.PaymentKills {
		kinds = append(kinds, KillPayment)
	}
	for i := range c.cfg.BrokerStops {
		kinds = append(kinds, []string{StopBrokerTerm, StopBrokerKill}[i%2])
	}
	if c.cfg.RestartPostgres {
		kinds = append(kinds, RestartPostgres)
	}
	c.rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	return kinds
}

// run injects the scheduled faults within about the load's duration.
func (c *controller) run(ctx context.Context, loadDuration time.Duration) {
	kinds := c.schedule()
	if len(kinds) == 0 {
		return
	}
	slot := loadDuration / time.Duration(len(kinds)+1)
	for _, kind := range kinds {
		wait := slot/2 + time.Duration(c.rnd.Int64N(int64(slot)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		c.inject(kind)
	}
}

func (c *controller) inject(kind string) {
	fmt.Fprintf(c.cfg.Log, "%s fault: %s\n", time.Now().Format("15:04:05.000"), kind)
	switch kind {
	case KillOrder:
		c.crashAndRestart(c.sys.orders[c.rnd.IntN(len(c.sys.orders))], false, c.shortPause())
	case KillPayment:
		c.crashAndRestart(c.sys.payments[c.rnd.IntN(len(c.sys.payments))], false, c.shortPause())
	case StopBrokerTerm:
		c.crashAndRestart(c.sys.broker, true, c.cfg.BrokerDowntime)
	case StopBrokerKill:
		c.crashAndRestart(c.sys.broker, false, c.cfg.BrokerDowntime)
	case RestartPostgres:
		if out, err := exec.Command(c.cfg.PostgresRestartCommand[0], c.cfg.PostgresRestartCommand[1:]...).CombinedOutput(); err != nil {
			c.fail(fmt.Sprintf("%s: %v: %s", kind, err, out))
		}
	}
	c.mu.Lock()
	c.injected[kind]++
	c.lastEnd = time.Now()
	c.mu.Unlock()
}

// shortPause is how long a crashed replica stays down: up to two seconds,
// long enough for the other replica to take over its partitions.
func (c *controller) shortPause() time.Duration {
	return 200*time.Millisecond + time.Duration(c.rnd.Int64N(int64(1800*time.Millisecond)))
}

func (c *controller) crashAndRestart(r *replica, graceful bool, down time.Duration) {
	r.crash(graceful)
	time.Sleep(down)
	if err := r.run(); err != nil {
		c.fail(fmt.Sprintf("restart %s: %v", r.spec.name, err))
	}
}

func (c *controller) fail(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, msg)
}
