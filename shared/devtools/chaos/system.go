package chaos

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
)

// replica is one supervised process. Like systemd's Restart=always, the
// supervisor restarts it whenever it exits on its own (a service may give up
// at start while the broker or the database is down), so the harness only
// decides when to crash it, not how to bring it back.
type replica struct {
	spec spec
	// ready is a URL that answers once the process is up, or "" for none.
	ready string

	mu       sync.Mutex
	proc     *process
	held     bool // down on purpose (a fault in progress): do not restart
	selfExit int  // times it exited on its own and was restarted
}

func (r *replica) run() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := start(r.spec)
	if err != nil {
		return err
	}
	r.proc, r.held = p, false
	return nil
}

// hold keeps the replica down (the supervisor leaves it alone until run is
// called again) and returns its process, nil if it never started.
func (r *replica) hold() *process {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = true
	return r.proc
}

// crash kills the replica with SIGKILL (or stops it with SIGTERM) and keeps
// it down until run is called again.
func (r *replica) crash(graceful bool) {
	if graceful {
		r.hold().stop(30 * time.Second)
	} else {
		r.hold().kill()
	}
}

// supervise restarts the replica whenever it exits on its own, until ctx ends.
func (r *replica) supervise(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		restart := !r.held && r.proc.exited()
		r.mu.Unlock()
		if restart {
			r.mu.Lock()
			r.selfExit++
			r.mu.Unlock()
			_ = r.run()
		}
	}
}

// dumpStacks ends the replica with a dump of its goroutines in its log and
// keeps it down.
func (r *replica) dumpStacks() {
	if p := r.hold(); p != nil {
		p.dumpStacks()
	}
}

func (r *replica) shutdown() {
	if p := r.hold(); p != nil {
		p.stop(10 * time.Second)
	}
}

// system is everything the run started.
type system struct {
	// Kafka is either the development broker, a supervised process, or the
	// Apache cluster, whose nodes only the fault controller stops and starts.
	broker  *replica
	cluster *kafkacluster.Cluster
	// ownCluster: the run started the cluster and stops it.
	ownCluster bool
	orders     []*replica
	payments   []*replica
	// orderURLs are the order replicas' base URLs, for the load and checks.
	orderURLs   []string
	brokers     []string
	orderDB     string
	paymentDB   string
	cancelWatch context.CancelFunc
}

// all are the supervised processes: the services, and the development
// broker if the run uses it.
func (s *system) all() []*replica {
	if s.broker == nil {
		return s.services()
	}
	return append([]*replica{s.broker}, s.services()...)
}

// services are the order and payment replicas.
func (s *system) services() []*replica {
	return append(append([]*replica{}, s.orders...), s.payments...)
}

// launch starts Kafka and two replicas of each service, and supervises
// them until stop.
func launch(cfg Config, orderDB, paymentDB string) (*system, error) {
	s := &system{orderDB: orderDB, paymentDB: paymentDB}
	if err := s.startKafka(cfg); err != nil {
		return nil, err
	}
	common := []string{"KAFKA_BROKERS=" + strings.Join(s.brokers, ","), "LOG_LEVEL=" + cmp.Or(cfg.LogLevel, "info"), "FORWARDER_POLL_INTERVAL=10ms"}
	for i := range 2 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s.orderURLs = append(s.orderURLs, "http://"+addr)
		s.orders = append(s.orders, &replica{ready: "http://" + addr + "/livez", spec: spec{
			name: fmt.Sprintf("order-%d", i+1), bin: cfg.Bins.Order, args: []string{"serve"},
			log: filepath.Join(cfg.WorkDir, fmt.Sprintf("order-%d.log", i+1)),
			env: append(common, "DATABASE_URL="+orderDB, "HTTP_ADDR="+addr),
		}})
		paddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s.payments = append(s.payments, &replica{ready: "http://" + paddr + "/livez", spec: spec{
			name: fmt.Sprintf("payment-%d", i+1), bin: cfg.Bins.Payment, args: []string{"serve"},
			log: filepath.Join(cfg.WorkDir, fmt.Sprintf("payment-%d.log", i+1)),
			env: append(common, "DATABASE_URL="+paymentDB, "PAYMENT_HTTP_ADDR="+paddr, "GATEWAY_APPROVE_LIMIT=10000"),
		}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancelWatch = cancel
	for _, r := range s.all() {
		if err := r.run(); err != nil {
			s.stop()
			return nil, err
		}
		go r.supervise(ctx)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startKafka starts the development broker (supervised with the services)
// or the Apache cluster.
func (s *system) startKafka(cfg Config) error {
	if cfg.Cluster != nil {
		s.cluster, s.brokers = cfg.Cluster, cfg.Cluster.Brokers()
		return nil
	}
	if cfg.Kafka == Apache {
		s.ownCluster = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c, err := kafkacluster.Start(ctx, kafkacluster.Config{
			Dir: filepath.Join(cfg.WorkDir, "kafka"), Nodes: 3, Topics: devkafka.Topics, Partitions: 4, Log: cfg.Log,
		})
		if err != nil {
			return err
		}
		s.cluster, s.brokers = c, c.Brokers()
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.brokers = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	s.broker = &replica{spec: spec{
		name: "devkafka", bin: cfg.Bins.DevKafka, log: filepath.Join(cfg.WorkDir, "devkafka.log"),
		args: []string{"--port", fmt.Sprint(port), "--data-dir", filepath.Join(cfg.WorkDir, "kafka-data"), "--partitions", "4"},
	}}
	return nil
}

// waitReady waits until every service replica answers /livez.
func (s *system) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, r := range s.services() {
		for !answers(r.ready) {
			if time.Now().After(deadline) {
				return fmt.Errorf("chaos: %s did not come up within %s (see %s)", r.spec.name, timeout, r.spec.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (s *system) stop() {
	if s.cancelWatch != nil {
		s.cancelWatch()
	}
	for _, r := range s.services() {
		r.shutdown()
	}
	if s.broker != nil {
		s.broker.shutdown()
	}
	if s.ownCluster {
		_ = s.cluster.Down()
	}
}

// selfExits counts the restarts the supervisor did (processes that gave up
// on their own, for example at start while the broker was down).
func (s *system) selfExits() int {
	n := 0
	for _, r := range s.all() {
		r.mu.Lock()
		n += r.selfExit
		r.mu.Unlock()
	}
	return n
}

func answers(url string) bool {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func freePort() (int, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	var n int
	_, err = fmt.Sscan(port, &n)
	return n, err
}
