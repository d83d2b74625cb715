// Command payment runs the payment service and inspects its poison queue.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/messaging"
	"github.com/es-outbox/reference/shared/tracing"
)

const usage = `Usage: payment [command]

Commands:
  serve                     consume order events and charge orders (default)
  migrate                   create the database if needed and apply migrations
  poison list [--json]      print the messages in the poison queue (payment.poison)

Environment:
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		service.Variables.PrintUsage(fs.Output())
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	command := "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	cfg, err := service.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := logs.New("payment", cfg.LogLevel)
	slog.SetDefault(logger)

	switch command {
	case "poison":
		return poison(ctx, cfg, args, stdout)
	case "migrate":
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %q (see payment --help)", args[0])
		}
		if err := service.Migrate(ctx, cfg); err != nil {
			return err
		}
		logger.Info("migrations applied")
		return nil
	case "serve":
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %q (see payment --help)", args[0])
		}
	default:
		return fmt.Errorf("unknown command %q (see payment --help)", command)
	}

	shutdownTracing, err := tracing.Setup(ctx, "payment")
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer svc.Close()
	err = svc.Run(ctx)
	logger.Info("stopped")
	return err
}

func poison(ctx context.Context, cfg service.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return errors.New("usage: payment poison list [--json]")
	}
	fs := flag.NewFlagSet("payment poison list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON, one object per message")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see payment poison list --help)", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	msgs, err := adapters.ReadPoisonQueue(ctx, cfg.KafkaBrokers, ports.PoisonTopic)
	if err != nil {
		return fmt.Errorf("read poison queue: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, m := range msgs {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	}
	if len(msgs) == 0 {
		fmt.Fprintln(stdout, "The poison queue is empty.")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPOISONED AT\tFROM\tEVENT TYPE\tKEY\tREASON\tPAYLOAD")
	for _, m := range msgs {
		md := m.Metadata
		from := fmt.Sprintf("%s %s/%s", md[middleware.PoisonedTopicKey], md[consumer.PoisonedPartitionKey], md[consumer.PoisonedOffsetKey])
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, md[consumer.PoisonedAtKey], from,
			orDash(md[messaging.EventTypeKey]), orDash(m.Key), excerpt(md[middleware.ReasonForPoisonedKey], 80), excerpt(m.Payload, 40))
	}
	return w.Flush()
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
