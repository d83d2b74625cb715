// Command devkafka runs the development Kafka broker (franz-go's kfake) on a
// loopback port, with topics kept on disk, and produces a raw record on
// request, as an independent Kafka client.
//
//	devkafka [--port 9092] [--data-dir DIR] [--partitions 4]
//	devkafka produce --topic T [--key K] [--header k=v]... VALUE
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
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/devtools/devkafka"
	"github.com/es-outbox/reference/shared/envconfig"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "produce" {
		err = produce(os.Args[2:])
	} else {
		err = serve(os.Args[1:])
	}
	cli.Exit("devkafka", err)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("devkafka", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: devkafka [flags]\n       devkafka produce --help\n\n"+
			"Runs a development Kafka broker on 127.0.0.1 until interrupted.\n\n")
		fs.PrintDefaults()
	}
	port := fs.Int("port", envInt("DEVKAFKA_PORT", 9092), "port on 127.0.0.1 (env DEVKAFKA_PORT)")
	dataDir := fs.String("data-dir", envString("DEVKAFKA_DATA_DIR", ".devkafka"), "directory that keeps topics and offsets across restarts; empty for memory only (env DEVKAFKA_DATA_DIR)")
	partitions := fs.Int("partitions", 4, "partitions of each topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	broker, err := devkafka.Start(devkafka.Config{
		Port: *port, DataDir: *dataDir, Partitions: int32(*partitions), Topics: devkafka.Topics,
	})
	if err != nil {
		return err
	}
	fmt.Printf("devkafka listening on %s (data: %s, topics: %s)\n", broker.Addr(), orMemory(*dataDir), strings.Join(devkafka.Topics, ", "))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	broker.Close()
	fmt.Println("devkafka stopped")
	return nil
}

func produce(args []string) error {
	fs := flag.NewFlagSet("devkafka produce", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: devkafka produce --topic T [--key K] [--header k=v]... VALUE\n\n"+
			"Produces one record with franz-go, apart from the services' own clients.\n\n")
		fs.PrintDefaults()
	}
	brokers := fs.String("brokers", envString("KAFKA_BROKERS", "127.0.0.1:9092"), "comma-separated brokers (env KAFKA_BROKERS)")
	topic := fs.String("topic", "", "topic (required)")
	key := fs.String("key", "", "record key")
	var headers headerFlags
	fs.Var(&headers, "header", "header as key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" || fs.NArg() != 1 {
		return errors.New("produce needs --topic and exactly one VALUE (see --help)")
	}
	// A plain franz-go client on purpose, not the services' producer
	// (kafka.NewOrderedProducer): this writes what someone else's client
	// would, hand-made or broken records to test the consumers with.
	client, err := kgo.NewClient(kgo.SeedBrokers(envconfig.SplitList(*brokers)...))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: *topic, Value: []byte(fs.Arg(0)), Headers: headers}
	if *key != "" {
		rec.Key = []byte(*key)
	}
	res, err := client.ProduceSync(ctx, rec).First()
	if err != nil {
		return fmt.Errorf("produce to %s at %s: %w", *topic, *brokers, err)
	}
	fmt.Printf("produced to %s partition %d offset %d\n", res.Topic, res.Partition, res.Offset)
	return nil
}

type headerFlags []kgo.RecordHeader

func (h *headerFlags) String() string { return fmt.Sprint(len(*h), " headers") }
func (h *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("header %q is not key=value", s)
	}
	*h = append(*h, kgo.RecordHeader{Key: k, Value: []byte(v)})
	return nil
}

func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func orMemory(dir string) string {
	if dir == "" {
		return "memory only"
	}
	return dir
}
