// Command order runs the order service.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/gctarget"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisoncli"
	"github.com/es-outbox/reference/shared/tracing"
)

const usage = `Usage: order [command]

Commands:
  serve            run the HTTP API, the consumer of payment outcomes, the payment
                   deadlines, the forwarder and the projector (default)
  forward          run only the forwarder: events table -> Kafka
  migrate          create the database if needed and apply migrations
  replay           rebuild read models from the first event and swap them in
                   (order replay --projection NAME | --all; see order replay --help)
  projections      list the read models with their checkpoint, lag, skipped events
                   and last error
  health           ask the running service's /readyz (for container health checks)
` + poisoncli.Summary + `
"order poison COMMAND --help" describes a poison command's flags.

Environment:
`

func main() {
	cli.Exit("order", run(os.Args[1:], os.Stdout))
}

// run dispatches the subcommand with the standard library's flag package
// and a switch: six commands and a few flags each do not need a CLI
// framework (cobra and the like would bring more code and dependencies than
// this file has), and the switch shows every command in one place.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
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
	// A read-model command parses its flags before anything connects, so
	// that --help and bad flags need no database.
	var readModelCommand func(context.Context, *service.Service) error
	var err error
	switch command {
	case "replay":
		readModelCommand, err = replayCommand(args, stdout)
	case "projections":
		readModelCommand, err = projectionsCommand(args, stdout)
	case "poison": // parses its own flags
	case "serve", "forward", "migrate", "health":
		if len(args) > 0 {
			err = fmt.Errorf("unexpected argument %q (see order --help)", args[0])
		}
	default:
		err = fmt.Errorf("unknown command %q (see order --help)", command)
	}
	if err != nil {
		return err
	}
	cfg, err := service.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := logs.New("order", cfg.LogLevel)
	slog.SetDefault(logger)
	kafka.LogClientTo(logger)

	switch command {
	case "poison":
		return poisoncli.Command{Service: "order", Stdout: stdout, LogLevel: cfg.LogLevel,
			Open: func(ctx context.Context, logger *slog.Logger) (*poisonapp.Queue, func(), error) {
				return service.OpenPoisonQueue(ctx, cfg, logger)
			}}.Run(ctx, args)
	case "health":
		return httpserver.Probe(ctx, cfg.HTTPAddr)
	case "migrate":
		if err := service.Migrate(ctx, cfg); err != nil {
			return err
		}
		logger.Info("migrations applied")
		return nil
	}

	shutdownTracing, err := tracing.Setup(ctx, "order")
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	if command == "serve" || command == "forward" {
		gctarget.Set()
		if err := httpserver.ServeProfiles(ctx, cfg.PprofAddr, logger); err != nil {
			return err
		}
	}
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer svc.Close()
	switch command {
	case "forward":
		err = svc.Forward(ctx)
	case "serve":
		var ln net.Listener
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return err
		}
		err = svc.Serve(ctx, ln)
	default:
		return readModelCommand(ctx, svc)
	}
	logger.Info("stopped")
	return err
}
