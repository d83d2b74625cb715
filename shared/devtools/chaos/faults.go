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
	// On the Apache cluster.
	KillLeader     = "kill -9 partition leader"
	RollingRestart = "rolling restart of all nodes"
	MajorityDown   = "kill -9 two of three nodes"
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
		if c.sys.cluster != nil {
			kinds = append(kinds, KillLeader)
		} else {
			kinds = append(kinds, []string{StopBrokerTerm, StopBrokerKill}[i%2])
		}
	}
	for range c.cfg.RollingRestarts {
		kinds = append(kinds, RollingRestart)
	}
	for range c.cfg.MajorityOutages {
		kinds = append(kinds, MajorityDown)
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
	case KillLeader:
		c.killLeader()
	case RollingRestart:
		c.rollingRestart()
	case MajorityDown:
		c.majorityDown()
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

// killLeader kills -9 the node that leads a random partition of one of the
// topics the forwarders write, and starts it again after BrokerDowntime.
func (c *controller) killLeader() {
	topic := []string{orderEventsTopic, paymentEventsTopic}[c.rnd.IntN(2)]
	partition := int32(c.rnd.IntN(4))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := c.sys.cluster.Leader(ctx, topic, partition)
	if err != nil {
		c.fail(fmt.Sprintf("%s: %v", KillLeader, err))
		return
	}
	fmt.Fprintf(c.cfg.Log, "  node %d leads %s/%d\n", id, topic, partition)
	c.outage(id)
}

// majorityDown kills two random nodes at once: no partition has
// min.insync.replicas and the controllers have no quorum until they are
// back, after BrokerDowntime.
func (c *controller) majorityDown() {
	nodes := c.sys.cluster.Nodes
	first := c.rnd.IntN(len(nodes))
	c.outage(nodes[first].ID, nodes[(first+1)%len(nodes)].ID)
}

// outage kills the nodes, waits BrokerDowntime and starts them again.
func (c *controller) outage(ids ...int) {
	for _, id := range ids {
		if err := c.sys.cluster.Kill(id); err != nil {
			c.fail(err.Error())
		}
	}
	time.Sleep(c.cfg.BrokerDowntime)
	for _, id := range ids {
		if err := c.sys.cluster.StartNode(id); err != nil {
			c.fail(err.Error())
		}
	}
}

// rollingRestart stops each node cleanly, starts it and waits until every
// replica is in sync again before the next, as an upgrade does.
func (c *controller) rollingRestart() {
	for _, n := range c.sys.cluster.Nodes {
		if err := c.sys.cluster.Stop(n.ID); err != nil {
			c.fail(err.Error())
		}
		if err := c.sys.cluster.StartNode(n.ID); err != nil {
			c.fail(err.Error())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if err := c.sys.cluster.WaitHealthy(ctx); err != nil {
			c.fail(fmt.Sprintf("%s: %v", RollingRestart, err))
		}
		cancel()
	}
}
