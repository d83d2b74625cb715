// Command payment runs the payment service and works on its poison queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/httpapi"
	"github.com/es-outbox/reference/shared/kafka"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/tracing"
)

const usage = `Usage: payment [command]

Commands:
  serve            consume order events (charge, refund), keep the poison queue, forward
                   payment events, serve the HTTP API (default)
  migrate          create the database if needed and apply migrations
  health           ask the running service's /readyz (for container health checks)
  poison list      list the poison queue: messages the consumer gave up on
  poison show      print one poison-queue entry whole: metadata and payload
  poison requeue   publish entries back to their original topic, once the cause is fixed
  poison discard   mark entries handled without publishing them, saying why

"payment poison COMMAND --help" describes a poison command's flags.

Environment:
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
}

// run runs the command in args; help goes to stdout. Its error is one line,
// for the user to read in one go (errors.Join and some clients use several).
func run(args []string, stdout io.Writer) error {
	err := dispatch(args, stdout)
	if err != nil && strings.Contains(err.Error(), "\n") {
		return oneLineError{err}
	}
	return err
}

func dispatch(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("payment", flag.ContinueOnError)
	args, err := parseFlags(fs, args, false, stdout, func(w io.Writer) {
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
		return poisonCommand{ctx: ctx, cfg: cfg, stdout: stdout}.run(args)
	case "health":
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return httpapi.Probe(ctx, cfg.HTTPAddr)
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

// parseFlags parses args with fs and returns the arguments that are not
// flags. With interspersed, flags may follow arguments ("requeue 0-3
// --dry-run"); otherwise parsing stops at the first argument (a command).
// A bad flag is a one-line error naming fs; --help prints help to stdout and
// returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, interspersed bool, stdout io.Writer, help func(io.Writer)) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			help(stdout)
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("%v (see %s --help)", err, fs.Name())
		}
		consumed := len(args) - fs.NArg()
		if !interspersed || fs.NArg() == 0 || (consumed > 0 && args[consumed-1] == "--") {
			return append(positional, fs.Args()...), nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// oneLineError shows an error of several lines on one.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e oneLineError) Unwrap() error { return e.err }
