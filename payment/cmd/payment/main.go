// Command payment runs the payment service and works on its poison queue.
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

	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/gctarget"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisoncli"
	"github.com/es-outbox/reference/shared/tracing"
)

const usage = `Usage: payment [command]

Commands:
  serve            consume order events (charge, refund), keep the poison queue, forward
                   payment events, serve the HTTP API (default)
  migrate          create the database if needed and apply migrations
  health           ask the running service's /readyz (for container health checks)
` + poisoncli.Summary + `
"payment poison COMMAND --help" describes a poison command's flags.

Environment:
`

func main() {
	cli.Exit("payment", run(os.Args[1:], os.Stdout))
}

// run runs the command in args; help goes to stdout. Its error is one line,
// for the user to read in one go (errors.Join and some clients use several).
// The standard library's flag package and a switch are the whole subcommand
// parser: a handful of commands needs no CLI framework and its dependencies.
func run(args []string, stdout io.Writer) error {
	return cli.OneLine(dispatch(args, stdout))
}

func dispatch(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	args, err := cli.ParseFlags(fs, args, false, stdout, func(w io.Writer) {
		fmt.Fprint(w, usage)
		service.Variables.PrintUsage(w)
	})
	if err != nil {
		return err
	}
	command := "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	if command != "poison" && len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (see payment --help)", args[0])
	}
	if command != "poison" && command != "migrate" && command != "serve" && command != "health" {
		return fmt.Errorf("unknown command %q (see payment --help)", command)
	}
	cfg, err := service.ConfigFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch command {
	case "poison":
		return poisoncli.Command{Service: "payment", Stdout: stdout, Open: func(ctx context.Context, logger *slog.Logger) (*poisonapp.Queue, func(), error) {
			return service.OpenPoisonQueue(ctx, cfg, logger)
		}, LogLevel: cfg.LogLevel}.Run(ctx, args)
	case "health":
		return httpserver.Probe(ctx, cfg.HTTPAddr)
	case "migrate":
		if err := service.Migrate(ctx, cfg); err != nil {
			return err
		}
		logs.New("payment", cfg.LogLevel).Info("migrations applied")
		return nil
	}
	return serve(ctx, cfg)
}

// serve runs the service until SIGINT or SIGTERM.
func serve(ctx context.Context, cfg service.Config) error {
	logger := logs.New("payment", cfg.LogLevel)
	slog.SetDefault(logger)
	kafka.LogClientTo(logger)
	shutdownTracing, err := tracing.Setup(ctx, "payment")
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	gctarget.Set()
	if err := httpserver.ServeProfiles(ctx, cfg.PprofAddr, logger); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on PAYMENT_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer svc.Close()
	err = svc.Run(ctx, ln)
	logger.Info("stopped")
	return err
}
