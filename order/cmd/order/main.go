// Command order runs the order service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/httpapi"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/tracing"
)

const usage = `Usage: order [command]

Commands:
  serve     run the HTTP API and the forwarder (default)
  forward   run only the forwarder: events table -> Kafka
  migrate   create the database if needed and apply migrations
  health    ask the running service's /readyz (for container health checks)

Environment:
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "order:", err)
			os.Exit(1)
		}
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		service.Variables.PrintUsage(fs.Output())
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	command := "serve"
	if fs.NArg() > 0 {
		command = fs.Arg(0)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("unexpected argument %q (see order --help)", fs.Arg(1))
	}
	cfg, err := service.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := logs.New("order", cfg.LogLevel)
	slog.SetDefault(logger)

	switch command {
	case "health":
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return httpapi.Probe(ctx, cfg.HTTPAddr)
	case "migrate":
		if err := service.Migrate(ctx, cfg); err != nil {
			return err
		}
		logger.Info("migrations applied")
		return nil
	case "serve", "forward":
	default:
		return fmt.Errorf("unknown command %q (see order --help)", command)
	}

	shutdownTracing, err := tracing.Setup(ctx, "order")
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer svc.Close()
	if command == "forward" {
		err = svc.Forward(ctx)
	} else {
		var ln net.Listener
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return err
		}
		err = svc.Serve(ctx, ln)
	}
	logger.Info("stopped")
	return err
}
