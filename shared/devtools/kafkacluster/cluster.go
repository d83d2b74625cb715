// Package kafkacluster runs a real Apache Kafka cluster on this machine, no
// Docker: the official broker's jars from Maven Central (resolved once into a
// cache), started as 1 or 3 combined KRaft nodes (broker and controller) on
// loopback ports, with the project's topics. With 3 nodes every topic has 3
// replicas, min.insync.replicas=2 and no unclean leader election, as a
// production cluster would. It can kill -9, stop and restart one node by id,
// and find the leader of a partition or the coordinator of a group, for the
// tests that inject broker faults.
//
// A cluster is a directory: one subdirectory per node (server.properties,
// data, logs, pid) and cluster.json, so another process (a test, the
// kafkacluster command) can Open it and act on its nodes. Nodes run in their
// own sessions: they outlive the process that started them until Down.
package kafkacluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says how many nodes to run, where, and which topics to create.
type Config struct {
	// Dir holds the cluster: node configs, data and logs. Required.
	Dir string
	// Nodes is 1 or 3; default 3.
	Nodes int
	// Port is the first node's client port; node i listens on Port+i-1
	// and its controller on Port+100+i-1. 0 picks free ones. Keep them
	// below 32768, the kernel's ephemeral ports, or a restarting node may
	// find its port taken by a client's connection.
	Port int
	// Topics are created with Partitions partitions (default 6) and, with 3
	// nodes, 3 replicas each.
	Topics     []string
	Partitions int32
	// HeapMB is each node's Java heap; default 512.
	HeapMB int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Node is one combined broker and controller.
type Node struct {
	ID             int `json:"id"`
	Port           int `json:"port"`
	ControllerPort int `json:"controller_port"`
}

// Addr is the node's client address, host:port.
func (n Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// Cluster is a cluster directory and what it takes to run its nodes.
type Cluster struct {
	Dir       string `json:"-"`
	ClusterID string `json:"cluster_id"`
	Java      string `json:"java"`
	Classpath string `json:"classpath"`
	HeapMB    int    `json:"heap_mb"`
	Nodes     []Node `json:"nodes"`
	log       io.Writer

	mu sync.Mutex
	// started are the node processes this process started, by node id:
	// whether one has exited is known exactly, from its wait.
	started map[int]*process
}

// process is a node's process that this process started and waits for.
type process struct {
	pid  int
	done chan struct{} // closed when it has exited and been reaped
	err  error         // how it exited, once done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

const stateFile = "cluster.json"

// Start starts the cluster in cfg.Dir: formats its storage the first time,
// starts every node that is not running, waits until all of them are in the
// cluster, and creates the topics that are missing. On a directory that
// already holds a cluster it starts that one again, with its data.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("kafkacluster: Config.Dir is required")
	}
	// Absolute, so that a node's command line names the same path whoever
	// opens the cluster, from any directory (Running looks for it).
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: %w", err)
	}
	cfg.Dir = dir
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes != 1 && cfg.Nodes != 3 {
		return nil, fmt.Errorf("kafkacluster: %d nodes: 1 or 3 are supported", cfg.Nodes)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if cfg.HeapMB == 0 {
		cfg.HeapMB = 512
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c, err := Open(cfg.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if c, err = create(ctx, cfg); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case len(c.Nodes) != cfg.Nodes:
		return nil, fmt.Errorf("kafkacluster: %s holds a cluster of %d nodes, not %d: remove it to start anew", cfg.Dir, len(c.Nodes), cfg.Nodes)
	}
	c.log = cfg.Log
	// All at once: a node's broker starts listening only once a majority of
	// the controllers has formed the quorum.
	for _, n := range c.Nodes {
		if err := c.launch(n.ID); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := c.waitListening(n); err != nil {
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	if err := c.CreateTopics(ctx, cfg.Partitions, cfg.Topics...); err != nil {
		return nil, err
	}
	return c, nil
}

// Open reads the cluster in dir, running or not. The error wraps
// os.ErrNotExist when dir holds none.
func Open(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: no cluster in %s: %w", dir, err)
	}
	c := &Cluster{Dir: dir, log: io.Discard}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("kafkacluster: %s: %w", filepath.Join(dir, stateFile), err)
	}
	return c, nil
}

// create writes the nodes' configuration and formats their storage.
func create(ctx context.Context, cfg Config) (*Cluster, error) {
	java, err := Java()
	if err != nil {
		return nil, err
	}
	cp, err := Classpath(ctx, cfg.Log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: cfg.Dir, Java: java, Classpath: cp, HeapMB: cfg.HeapMB, log: cfg.Log}
	if c.Nodes, err = nodePorts(cfg.Nodes, cfg.Port); err != nil {
		return nil, err
	}
	id, err := exec.CommandContext(ctx, java, "-cp", cp, "kafka.tools.StorageTool", "random-uuid").Output()
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: kafka-storage random-uuid: %w", err)
	}
	c.ClusterID = strings.TrimSpace(string(id))
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cfg.Log, "kafkacluster: formatting %d nodes in %s\n", len(c.Nodes), cfg.Dir)
	errs := make(chan error, len(c.Nodes))
	for _, n := range c.Nodes {
		go func() {
			out, err := exec.CommandContext(ctx, java, "-cp", cp, "-Dlog4j2.configurationFile="+c.path(n.ID, "log4j2.properties"),
				"kafka.tools.StorageTool", "format", "-t", c.ClusterID, "-c", c.path(n.ID, "server.properties")).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("kafkacluster: format node %d: %v: %s", n.ID, err, lastLines(string(out), 3))
			}
			errs <- err
		}()
	}
	for range c.Nodes {
		if e := <-errs; e != nil {
			err = e
		}
	}
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return c, os.WriteFile(filepath.Join(cfg.Dir, stateFile), b, 0o644)
}

func nodePorts(count, first int) ([]Node, error) {
	if first == 0 {
		var err error
		if first, err = freePorts(count); err != nil {
			return nil, err
		}
	}
	nodes := make([]Node, count)
	for i := range nodes {
		nodes[i] = Node{ID: i + 1, Port: first + i, ControllerPort: first + 100 + i}
	}
	return nodes, nil
}

// freePorts finds a first port for count nodes whose ports (first to
// first+count-1, and 100 above) are all free now. It looks below the
// kernel's ephemeral range (32768 and up on Linux): a port in that range
// may be taken as the local end of some client's connection while its node
// is down, and the node could not listen again when it restarts.
func freePorts(count int) (int, error) {
	for range 100 {
		first := 20000 + 10*rand.IntN(1200)
		free := true
		for _, p := range []int{first, first + 100} {
			for i := range count {
				ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+i)))
				if err != nil {
					free = false
					continue
				}
				ln.Close()
			}
		}
		if free {
			return first, nil
		}
	}
	return 0, errors.New("kafkacluster: no free ports between 20000 and 32100")
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeConfig writes a node's server.properties and log4j2 configuration.
func (c *Cluster) writeConfig(n Node) error {
	if err := os.MkdirAll(c.path(n.ID, "data"), 0o755); err != nil {
		return err
	}
	var voters []string
	for _, v := range c.Nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", v.ID, v.ControllerPort))
	}
	replicas := min(3, len(c.Nodes))
	minISR := max(1, replicas-1)
	props := fmt.Sprintf(`# Written by kafkacluster: node %[1]d of %[2]d.
process.roles=broker,controller
node.id=%[1]d
listeners=PLAINTEXT://127.0.0.1:%[3]d,CONTROLLER://127.0.0.1:%[4]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[3]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=%[5]s
log.dirs=%[6]s
# Durability as in production: every topic on %[7]d replicas, a write
# acknowledged by all in-sync replicas needs %[8]d of them, and a replica
# that fell behind never becomes leader.
default.replication.factor=%[7]d
min.insync.replicas=%[8]d
offsets.topic.replication.factor=%[7]d
transaction.state.log.replication.factor=%[7]d
transaction.state.log.min.isr=%[8]d
unclean.leader.election.enable=false
num.partitions=6
# A small machine: few threads, few group-offset partitions, and groups
# that form at once (tests start consumers and expect them to join).
offsets.topic.num.partitions=12
num.network.threads=2
num.io.threads=4
background.threads=4
group.initial.rebalance.delay.ms=0
`, n.ID, len(c.Nodes), n.Port, n.ControllerPort, strings.Join(voters, ","), c.path(n.ID, "data"), replicas, minISR)
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
`, c.path(n.ID, "server.log"))
	if err := os.WriteFile(c.path(n.ID, "server.properties"), []byte(props), 0o644); err != nil {
		return err
	}
	return os.WriteFile(c.path(n.ID, "log4j2.properties"), []byte(log4j), 0o644)
}

func (c *Cluster) path(id int, name string) string {
	return filepath.Join(c.Dir, fmt.Sprintf("node-%d", id), name)
}

// Brokers are the nodes' client addresses, for KAFKA_BROKERS.
func (c *Cluster) Brokers() []string {
	var b []string
	for _, n := range c.Nodes {
		b = append(b, n.Addr())
	}
	return b
}

func (c *Cluster) node(id int) (Node, error) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("kafkacluster: no node %d (the cluster has %d)", id, len(c.Nodes))
}

// StartNode starts node id (its data kept) and waits until it accepts
// connections; it does not wait for it to catch up (WaitHealthy does).
func (c *Cluster) StartNode(id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	// A node killed a moment ago may leave a port it listened on unusable
	// for a while (seen: "Address already in use" on the controller port a
	// few seconds after kill -9); such a start is tried again for a minute.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		logSize := fileSize(c.path(id, "server.log"))
		if err := c.launch(id); err != nil {
			return err
		}
		err := c.waitListening(n)
		if err == nil || time.Now().After(deadline) || !strings.Contains(readFrom(c.path(id, "server.log"), logSize), "Address already in use") {
			return err
		}
		fmt.Fprintf(c.log, "kafkacluster: node %d: a port is still in use; starting it again\n", id)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the file from offset on.
func readFrom(path string, offset int64) string {
	b := []byte(readFile(path))
	if offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// launch starts node id's process unless it runs.
func (c *Cluster) launch(id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if c.Running(id) {
		c.setStarted(id, nil) // another process's, or one started before
		return nil
	}
	out, err := os.OpenFile(c.path(id, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(c.Java, "-Xms128m", fmt.Sprintf("-Xmx%dm", c.HeapMB),
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+c.path(id, "log4j2.properties"),
		"-cp", c.Classpath, "kafka.Kafka", c.path(id, "server.properties"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this process, until Down
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kafkacluster: start node %d: %w", id, err)
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { // reaps it should it end while this process runs
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.setStarted(id, p)
	if err := os.WriteFile(c.path(id, "pid"), []byte(strconv.Itoa(p.pid)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.log, "kafkacluster: node %d starting on %s (pid %d)\n", id, n.Addr(), p.pid)
	return nil
}

func (c *Cluster) setStarted(id int, p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started == nil {
		c.started = map[int]*process{}
	}
	c.started[id] = p
}

// startedProcess is node id's process if this process started it, or nil.
func (c *Cluster) startedProcess(id int) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started[id]
}

// startTimeout is how long a node may take to listen after its start: about
// 15 s on a quiet machine, and seen above 90 s on these 2 cores under a load
// average of 10.
const startTimeout = 3 * time.Minute

// waitListening waits until node n accepts connections.
func (c *Cluster) waitListening(n Node) error {
	id := n.ID
	deadline := time.Now().Add(startTimeout)
	p := c.startedProcess(id)
	for !listening(n.Addr()) {
		if p != nil && p.exited() || p == nil && !c.Running(id) {
			how := ""
			if p != nil {
				how = fmt.Sprintf(" (%v)", p.err)
			}
			return fmt.Errorf("kafkacluster: node %d exited at start%s: %s", id, how, lastLines(readFile(c.path(id, "stdout.log"))+readFile(c.path(id, "server.log")), 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafkacluster: node %d does not listen on %s after %s (see %s)", id, n.Addr(), startTimeout, c.path(id, "server.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// Running reports whether node id's process is alive.
func (c *Cluster) Running(id int) bool { return c.runningPID(id) != 0 }

// runningPID is node id's process, or 0 if it does not run. The pid must
// still be this node's java (pids are reused) and not a zombie waiting to be
// reaped.
func (c *Cluster) runningPID(id int) int {
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(c.path(id, "pid"))))
	if pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), c.path(id, "server.properties")) {
		return 0
	}
	if state, _, _, ok := procStat(pid); !ok || state == "Z" || state == "X" {
		return 0
	}
	return pid
}

// ended reports whether process pid, which started at start (ticks after
// boot), has ended and let go of everything it held. Not "its command line
// is gone": that empties as soon as the process drops its memory, before it
// closes its files and sockets, so a node started again at that moment can
// find its port or its log directory's lock still taken. A process that has
// ended but was not reaped is a zombie, once all its threads are gone.
func ended(pid int, start uint64) bool {
	state, started, threads, ok := procStat(pid)
	return !ok || started != start || (state == "Z" || state == "X") && threads <= 1
}

// procStat reads process pid's state, start time and number of threads
// from /proc; ok is false if there is no such process.
func procStat(pid int) (state string, start uint64, threads int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	// The fields after the command's name in parentheses, from the 3rd
	// (state) on: num_threads is the 20th, starttime the 22nd.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 20 {
		return "", 0, 0, false
	}
	threads, _ = strconv.Atoi(fields[17])
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return fields[0], start, threads, true
}

// Kill crashes node id (kill -9) and waits until its process is gone.
func (c *Cluster) Kill(id int) error {
	return c.signal(id, syscall.SIGKILL, 10*time.Second)
}

// Stop shuts node id down cleanly (SIGTERM: it hands its partitions'
// leadership over first) and waits up to a minute, then kills it.
func (c *Cluster) Stop(id int) error {
	if err := c.signal(id, syscall.SIGTERM, time.Minute); err != nil {
		return c.Kill(id)
	}
	return nil
}

func (c *Cluster) signal(id int, sig syscall.Signal, wait time.Duration) error {
	if _, err := c.node(id); err != nil {
		return err
	}
	// The pid is read and checked once: signalling a pid read again later
	// could hit another process (or, as 0, this one's whole group).
	pid := c.runningPID(id)
	if pid == 0 {
		return nil
	}
	_, start, _, _ := procStat(pid)
	fmt.Fprintf(c.log, "kafkacluster: node %d: %s\n", id, sig)
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("kafkacluster: signal node %d: %w", id, err)
	}
	gone := func() bool { return ended(pid, start) }
	if p := c.startedProcess(id); p != nil && p.pid == pid {
		gone = p.exited
	}
	for deadline := time.Now().Add(wait); !gone(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("kafkacluster: node %d still runs %s after %s", id, wait, sig)
		}
	}
	return nil
}

// Down stops every node (SIGTERM, all at once, so that no node waits for a
// controller quorum the others already left), killing any that lingers.
func (c *Cluster) Down() error {
	errs := make(chan error, len(c.Nodes))
	for _, n := range c.Nodes {
		go func() {
			if err := c.signal(n.ID, syscall.SIGTERM, 30*time.Second); err != nil {
				errs <- c.Kill(n.ID)
				return
			}
			errs <- nil
		}()
	}
	var err error
	for range c.Nodes {
		err = errors.Join(err, <-errs)
	}
	return err
}

// Logs are the paths of node id's log files, for a post-mortem.
func (c *Cluster) Logs(id int) []string {
	return []string{c.path(id, "server.log"), c.path(id, "stdout.log")}
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
