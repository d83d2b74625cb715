// Command kafkacluster runs a real Apache Kafka cluster (KRaft, 1 or 3
// nodes) on this machine from the official broker's jars (Maven Central,
// cached after the first run), with the project's topics, and acts on its
// nodes for fault tests.
//
//	kafkacluster up [--dir .kafka] [--nodes 3] [--port 29092] [--partitions 6]
//	kafkacluster down|status|brokers [--dir .kafka]
//	kafkacluster kill|stop|start [--dir .kafka] NODE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/devtools/kafkacluster"
)

const usage = `Usage: kafkacluster COMMAND [flags]

Runs a real Apache Kafka %s cluster on 127.0.0.1, no Docker: Java and Maven
fetch the broker from Maven Central once (cached in %s).

Commands:
  up       start the cluster (format it the first time) and create the topics;
           prints KAFKA_BROKERS
  down     stop every node (data kept; up starts it again)
  status   nodes, and each topic partition's leader and in-sync replicas
  brokers  print the bootstrap brokers, comma-separated
  kill N   kill -9 node N
  stop N   stop node N cleanly (SIGTERM)
  start N  start node N again

Flags (after the command):
`

func main() {
	cli.Exit("kafkacluster", run(os.Args[1:]))
}

func run(args []string) error {
	fs := flag.NewFlagSet("kafkacluster", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, kafkacluster.KafkaVersion, kafkacluster.CacheDir())
		fs.PrintDefaults()
	}
	dir := fs.String("dir", ".kafka", "the cluster's directory: configs, data, logs")
	nodes := fs.Int("nodes", 3, "nodes (1 or 3), for up")
	port := fs.Int("port", 29092, "first node's port (node N listens on port+N-1, its controller on port+100+N-1), for up")
	partitions := fs.Int("partitions", 6, "partitions of each topic, for up")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return err
		}
		fs.Usage()
		return errors.New("a command is required (up, down, status, brokers, kill, stop, start)")
	}
	command := args[0]
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if command == "up" {
		if len(positional) > 0 {
			return fmt.Errorf("unexpected argument %q (see --help)", positional[0])
		}
		c, err := kafkacluster.Start(ctx, kafkacluster.Config{
			Dir: *dir, Nodes: *nodes, Port: *port, Partitions: int32(*partitions), Topics: devkafka.Topics, Log: os.Stderr,
		})
		if err != nil {
			return err
		}
		fmt.Printf("KAFKA_BROKERS=%s\n", strings.Join(c.Brokers(), ","))
		return nil
	}
	c, err := kafkacluster.Open(*dir)
	if err != nil {
		return fmt.Errorf("%v (start one with: kafkacluster up --dir %s)", err, *dir)
	}
	switch command {
	case "down":
		return c.Down()
	case "brokers":
		fmt.Println(strings.Join(c.Brokers(), ","))
		return nil
	case "status":
		return status(ctx, c)
	case "kill", "stop", "start":
		if len(positional) != 1 {
			return fmt.Errorf("%s takes one node id", command)
		}
		id, err := strconv.Atoi(positional[0])
		if err != nil {
			return fmt.Errorf("node id %q is not a number", positional[0])
		}
		switch command {
		case "kill":
			return c.Kill(id)
		case "stop":
			return c.Stop(id)
		default:
			return c.StartNode(id)
		}
	}
	return fmt.Errorf("unknown command %q (see --help)", command)
}

// parseInterleaved parses flags that may stand before or after the
// positional arguments (kill 2 --dir X), and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func status(ctx context.Context, c *kafkacluster.Cluster) error {
	for _, n := range c.Nodes {
		state := "down"
		if c.Running(n.ID) {
			state = "running"
		}
		fmt.Printf("node %d  %s  %s\n", n.ID, n.Addr(), state)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return err
	}
	for _, t := range topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			fmt.Printf("%s/%d  leader %d  replicas %v  in sync %v\n", t.Topic, p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
	return nil
}
