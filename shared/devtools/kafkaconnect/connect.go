// Package kafkaconnect runs Kafka Connect in standalone mode with the
// Debezium PostgreSQL connector on this machine, no Docker: Apache Kafka's
// connect-runtime and Debezium's jars from Maven Central (resolved once into
// the kafkacluster cache), one JVM that runs one connector from a worker and
// a connector properties file, such as deployments/debezium/. The peer
// benchmarks and the Debezium check start it against the benchmark's
// PostgreSQL cluster (wal_level=logical) and the real Kafka cluster.
package kafkaconnect

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
)

// DebeziumVersion is the Debezium release the pom pins, built against
// Apache Kafka 4.3.0 (the pom runs it on kafkacluster.KafkaVersion).
const DebeziumVersion = "3.6.1.Final"

// pom names Connect's and Debezium's jars.
//
//go:embed pom.xml
var pom []byte

// Classpath returns Connect's and Debezium's classpath ("DIR/*"), resolving
// the jars with Maven the first time (about 40 MB) and from the cache after
// that.
func Classpath(ctx context.Context, log io.Writer) (string, error) {
	return kafkacluster.ResolveJars(ctx, log, "connect-"+kafkacluster.KafkaVersion+"-debezium-"+DebeziumVersion, pom)
}

// Config says which worker and connector to run, and where.
type Config struct {
	// Dir receives the worker's files: the properties it runs with, its
	// offsets and its logs. Required.
	Dir string
	// Worker and Connector are the paths of the worker's and the
	// connector's properties files. Required.
	Worker, Connector string
	// Brokers replace the worker's bootstrap.servers. Required.
	Brokers []string
	// ConnectorSettings replace (or add) settings of the connector file,
	// such as database.port or slot.name.
	ConnectorSettings map[string]string
	// HeapMB is the JVM's heap; default 512.
	HeapMB int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Worker is a running Connect standalone JVM with its one connector.
type Worker struct {
	dir       string
	connector string
	rest      string
	cmd       *exec.Cmd
	done      chan struct{}
}

// Start writes the worker's and the connector's properties into cfg.Dir
// (bootstrap.servers, the offsets file and a free REST port replaced), starts
// the JVM and waits until the connector and its task run. Offsets kept in
// cfg.Dir from an earlier run are used: the connector goes on from there.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.Dir == "" || cfg.Worker == "" || cfg.Connector == "" || len(cfg.Brokers) == 0 {
		return nil, errors.New("kafkaconnect: Config needs Dir, Worker, Connector and Brokers")
	}
	if cfg.HeapMB == 0 {
		cfg.HeapMB = 512
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	java, err := kafkacluster.Java()
	if err != nil {
		return nil, err
	}
	cp, err := Classpath(ctx, cfg.Log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	port, err := kafkacluster.FreePort()
	if err != nil {
		return nil, err
	}
	_, err = writeProperties(cfg.Worker, filepath.Join(cfg.Dir, "worker.properties"), map[string]string{
		"bootstrap.servers":            strings.Join(cfg.Brokers, ","),
		"offset.storage.file.filename": filepath.Join(cfg.Dir, "offsets"),
		"listeners":                    "http://127.0.0.1:" + strconv.Itoa(port),
	})
	if err != nil {
		return nil, err
	}
	connector, err := writeProperties(cfg.Connector, filepath.Join(cfg.Dir, "connector.properties"), cfg.ConnectorSettings)
	if err != nil {
		return nil, err
	}
	log4j := filepath.Join(cfg.Dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(fmt.Sprintf(log4jProperties, filepath.Join(cfg.Dir, "connect.log"))), 0o644); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(cfg.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	w := &Worker{dir: cfg.Dir, connector: connector["name"], rest: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	w.cmd = exec.Command(java, "-Xms128m", fmt.Sprintf("-Xmx%dm", cfg.HeapMB), "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+log4j, "-cp", cp,
		"org.apache.kafka.connect.cli.ConnectStandalone", filepath.Join(cfg.Dir, "worker.properties"), filepath.Join(cfg.Dir, "connector.properties"))
	w.cmd.Stdout, w.cmd.Stderr = out, out
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("kafkaconnect: start the worker: %w", err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	fmt.Fprintf(cfg.Log, "kafkaconnect: Connect %s with Debezium %s starting (pid %d, REST %s, %s)\n",
		kafkacluster.KafkaVersion, DebeziumVersion, w.Pid(), w.rest, cfg.Dir)
	if err := w.waitRunning(ctx, 2*time.Minute); err != nil {
		_ = w.Stop()
		return nil, err
	}
	return w, nil
}

// Pid is the JVM's process id, for its CPU time and memory.
func (w *Worker) Pid() int { return w.cmd.Process.Pid }

// LogFile is the path of the worker's log.
func (w *Worker) LogFile() string { return filepath.Join(w.dir, "connect.log") }

// Stop shuts the worker down cleanly (SIGTERM: the task commits its
// offsets, so Debezium confirms its position to PostgreSQL) and waits up to
// 30 s, then kills it.
func (w *Worker) Stop() error {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
		return errors.New("kafkaconnect: the worker did not stop within 30 s of SIGTERM; killed")
	}
}

// status is the REST API's answer for a connector.
type status struct {
	Connector struct {
		State string `json:"state"`
	} `json:"connector"`
	Tasks []struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// waitRunning polls the REST API until the connector and all its tasks run.
func (w *Worker) waitRunning(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "not answering"
	for {
		select {
		case <-w.done:
			return fmt.Errorf("kafkaconnect: the worker exited at start: %s", w.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafkaconnect: connector %s not running after %s (%s; see %s)", w.connector, timeout, last, w.LogFile())
		}
		s, err := w.status(ctx)
		if err != nil {
			continue
		}
		last = "connector " + s.Connector.State
		running := s.Connector.State == "RUNNING" && len(s.Tasks) > 0
		for _, t := range s.Tasks {
			if t.State == "FAILED" {
				return fmt.Errorf("kafkaconnect: connector %s failed: %s", w.connector, firstLine(t.Trace))
			}
			running = running && t.State == "RUNNING"
		}
		if running {
			return nil
		}
	}
}

func (w *Worker) status(ctx context.Context) (status, error) {
	var s status
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.rest+"/connectors/"+w.connector+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Failed returns the task's error if it failed since it started, else nil.
func (w *Worker) Failed(ctx context.Context) error {
	s, err := w.status(ctx)
	if err != nil {
		return err
	}
	for _, t := range s.Tasks {
		if t.State == "FAILED" {
			return fmt.Errorf("kafkaconnect: connector %s failed: %s", w.connector, firstLine(t.Trace))
		}
	}
	return nil
}

func (w *Worker) tail() string {
	var lines []string
	for _, name := range []string{"stdout.log", "connect.log"} {
		b, _ := os.ReadFile(filepath.Join(w.dir, name))
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, "ERROR") || strings.Contains(l, "Exception") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
	}
	return strings.Join(lines[max(0, len(lines)-3):], "; ")
}

const log4jProperties = `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.reflections.name = org.reflections
logger.reflections.level = error
`

// Properties reads a Java properties file's key=value lines (comments and
// blank lines skipped; no line continuations, which the files here do not
// use).
func Properties(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kafkaconnect: %w", err)
	}
	props := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("kafkaconnect: %s: not key=value: %q", path, line)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props, s.Err()
}

// writeProperties copies the properties file from to to, with settings
// replacing (or added to) its own, and returns the result.
func writeProperties(from, to string, settings map[string]string) (map[string]string, error) {
	props, err := Properties(from)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s, with the settings of this run\n", from)
	b.WriteString(mustRead(from))
	b.WriteString("\n# This run's settings\n")
	for k, v := range settings {
		props[k] = v
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return props, os.WriteFile(to, []byte(b.String()), 0o644)
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
