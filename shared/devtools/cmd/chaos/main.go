// Command chaos runs the fault-injection suite (package shared/devtools/chaos): it
// builds the order, payment and devkafka binaries, runs two replicas of each
// service and the broker on fresh databases, places orders while it crashes
// and restarts them, then checks that nothing was lost, skipped, reordered or
// charged twice, and prints the figures. It exits 1 if anything was found.
//
//	chaos [--kafka dev|apache] [--orders 300] [--interval 50ms] [--order-kills 4]
//	      [--payment-kills 4] [--broker-stops 2] [--broker-downtime 5s]
//	      [--rolling-restarts 1] [--majority-outages 1] [--restart-postgres] [--seed N]
//	      [--cluster DIR]
//
// With --kafka apache it runs on a real 3-node Apache Kafka cluster (started
// in its work directory with package kafkacluster; needs Java and Maven),
// where a broker stop kills the leader of a partition, and adds rolling
// restarts and outages of two of the three nodes. With --cluster it runs on
// the cluster already running in DIR (`kafkacluster up --dir DIR`, on ports
// of your choosing) instead: its topics and consumer groups are deleted and
// the topics created anew first, and it is left running.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/devtools/chaos"
	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

func main() {
	cli.Exit("chaos", run(os.Args[1:]))
}

func run(args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chaos [flags]\n\nRuns the fault-injection suite on this machine (loopback only) and prints its figures.\n"+
			"PostgreSQL comes from DATABASE_URL (default %s).\n\n", testenv.DefaultDatabaseURL)
		fs.PrintDefaults()
	}
	cfg := chaos.Config{Log: os.Stdout}
	fs.StringVar(&cfg.Kafka, "kafka", chaos.DevKafka, "the broker: dev (the development broker) or apache (a 3-node Apache Kafka cluster)")
	fs.IntVar(&cfg.Orders, "orders", 300, "orders to place")
	fs.DurationVar(&cfg.Interval, "interval", 50*time.Millisecond, "time between two orders")
	fs.IntVar(&cfg.OrderKills, "order-kills", 4, "kill -9 of an order replica")
	fs.IntVar(&cfg.PaymentKills, "payment-kills", 4, "kill -9 of a payment replica")
	fs.IntVar(&cfg.BrokerStops, "broker-stops", 2, "broker stops (alternately SIGTERM and SIGKILL)")
	fs.DurationVar(&cfg.BrokerDowntime, "broker-downtime", 5*time.Second, "how long the broker stays down")
	fs.IntVar(&cfg.RollingRestarts, "rolling-restarts", -1, "rolling restarts of the Apache cluster (default 1 with --kafka apache)")
	fs.IntVar(&cfg.MajorityOutages, "majority-outages", -1, "kill -9 of two of the three Apache nodes for the broker downtime (default 1 with --kafka apache)")
	fs.BoolVar(&cfg.RestartPostgres, "restart-postgres", false, "restart the PostgreSQL cluster once under load (disturbs every user of the server)")
	fs.DurationVar(&cfg.QuiesceTimeout, "quiesce-timeout", 2*time.Minute, "how long to wait for every order to settle")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "the services' LOG_LEVEL (debug adds Sarama's log of group joins and claims)")
	fs.Int64Var(&cfg.Seed, "seed", time.Now().UnixNano(), "seed of the fault schedule")
	clusterDir := fs.String("cluster", "", "run on the 3-node Apache Kafka cluster running in this directory (kafkacluster up --dir); implies --kafka apache; its topics are reset")
	keep := fs.Bool("keep", false, "keep the work directory (logs, broker data) after a successful run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *clusterDir != "" {
		c, err := openCluster(ctx, *clusterDir)
		if err != nil {
			return err
		}
		cfg.Cluster, cfg.Kafka = c, chaos.Apache
	}
	if cfg.Kafka != chaos.DevKafka && cfg.Kafka != chaos.Apache {
		return fmt.Errorf("--kafka %q: want %s or %s", cfg.Kafka, chaos.DevKafka, chaos.Apache)
	}
	for _, n := range []*int{&cfg.RollingRestarts, &cfg.MajorityOutages} {
		if *n < 0 && cfg.Kafka == chaos.Apache {
			*n = 1
		}
		*n = max(*n, 0)
	}
	cfg.ServerURL = testenv.DefaultDatabaseURL
	if url := os.Getenv("DATABASE_URL"); url != "" {
		cfg.ServerURL = url
	}
	dir, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		return err
	}
	cfg.WorkDir = dir
	if cfg.Bins, err = build(filepath.Join(dir, "bin")); err != nil {
		return err
	}
	fmt.Printf("chaos: seed %d, %d orders every %s, Kafka: %s\n", cfg.Seed, cfg.Orders, cfg.Interval, cfg.Kafka)

	report, err := chaos.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, dir)
	}
	fmt.Println()
	report.Print(os.Stdout)
	if !report.OK() {
		return fmt.Errorf("the checks failed (seed %d; logs in %s)", cfg.Seed, dir)
	}
	if !*keep {
		return os.RemoveAll(dir)
	}
	return nil
}

// build compiles the three programs under test into dir.
func build(dir string) (chaos.Binaries, error) {
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/es-outbox/reference/order/cmd/order",
		"github.com/es-outbox/reference/payment/cmd/payment",
		"github.com/es-outbox/reference/shared/devtools/cmd/devkafka")
	if out, err := cmd.CombinedOutput(); err != nil {
		return chaos.Binaries{}, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return chaos.Binaries{
		Order: filepath.Join(dir, "order"), Payment: filepath.Join(dir, "payment"), DevKafka: filepath.Join(dir, "devkafka"),
	}, nil
}

// openCluster opens the running cluster in dir and gives it the project's
// topics, empty, and no consumer group: what the run checks is then only
// what it produced.
func openCluster(ctx context.Context, dir string) (*kafkacluster.Cluster, error) {
	c, err := kafkacluster.Open(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, fmt.Errorf("--cluster %s: %w", dir, err)
	}
	if err := c.ResetTopics(ctx, 4, devkafka.Topics...); err != nil {
		return nil, fmt.Errorf("--cluster %s: %w", dir, err)
	}
	return c, nil
}
