// Package poisoncli is the `poison` command of both services (`payment
// poison ...`, `order poison ...`): list, show, requeue and discard the
// entries of the service's poison queue.
package poisoncli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/es-outbox/reference/shared/cli"
	"github.com/es-outbox/reference/shared/logs"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// Summary lists the poison commands, for a service's usage text.
const Summary = `  poison list      list the poison queue: messages the consumer gave up on
  poison show      print one poison-queue entry whole: metadata and payload
  poison requeue   publish entries back to their original topic and partition, once the cause is fixed
  poison discard   mark entries handled without publishing them, saying why
`

const usage = `Usage: %[1]s poison COMMAND [flags]

The poison queue holds the messages the consumer gave up on after its retries,
kept in the %[1]s database (table poison_messages) with where they came from
and why they failed. Fix the cause, then requeue them, or discard them.

Commands:
  list [--json] [--status new|requeued|discarded|all]
  show [--json] ID
  requeue [--dry-run] [--by NAME] ID... | --all
  discard --reason TEXT [--by NAME] ID...

"%[1]s poison COMMAND --help" describes a command's flags.
`

// Command runs the poison-queue commands of one service.
type Command struct {
	// Service names the service in usage and errors: "payment", "order".
	Service string
	// Open connects to the service's poison queue (its database, and Kafka
	// to requeue) with logger; the returned function releases it.
	Open func(ctx context.Context, logger *slog.Logger) (*poisonapp.Queue, func(), error)
	// LogLevel is the service's LOG_LEVEL; the commands print what they
	// did, so info is raised to warn.
	LogLevel string
	Stdout   io.Writer
}

// Run runs `<service> poison args...`. Help goes to Stdout and returns
// flag.ErrHelp; an error is one line.
func (c Command) Run(ctx context.Context, args []string) error {
	return cli.OneLine(c.run(ctx, args))
}

func (c Command) run(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-help" || args[0] == "-h") {
		fmt.Fprintf(c.Stdout, usage, c.Service)
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return fmt.Errorf("poison needs a command: list, show, requeue or discard (see %s poison --help)", c.Service)
	}
	switch command, args := args[0], args[1:]; command {
	case "list":
		return c.list(ctx, args)
	case "show":
		return c.show(ctx, args)
	case "requeue":
		return c.requeue(ctx, args)
	case "discard":
		return c.discard(ctx, args)
	default:
		return fmt.Errorf("unknown poison command %q (see %s poison --help)", command, c.Service)
	}
}

// open connects to the poison queue; call the returned function when done.
func (c Command) open(ctx context.Context) (*poisonapp.Queue, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	level := c.LogLevel
	if level == "" || level == "info" {
		level = "warn"
	}
	return c.Open(ctx, logs.New(c.Service, level))
}

// flags is a poison command's flag set, named for its errors.
func (c Command) flags(command string) *flag.FlagSet {
	return flag.NewFlagSet(c.Service+" poison "+command, flag.ContinueOnError)
}

func (c Command) list(ctx context.Context, args []string) error {
	fs := c.flags("list")
	asJSON := fs.Bool("json", false, "print JSON, one object per entry")
	statusFlag := fs.String("status", string(poison.StatusNew), "list entries with this status: new, requeued, discarded or all")
	rest, err := cli.ParseFlags(fs, args, true, c.Stdout, c.help(fs, "list [--json] [--status new|requeued|discarded|all]",
		"Lists poison-queue entries, oldest first: by default those nobody has handled yet."))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (see %s poison list --help)", rest[0], c.Service)
	}
	status, err := poison.ParseStatusFilter(*statusFlag)
	if err != nil {
		return fmt.Errorf("--status: %w", err)
	}
	queue, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	entries, err := queue.List(ctx, status)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.Stdout)
		for _, e := range entries {
			if err := enc.Encode(poisonhttp.NewPoisonEntryJSON(e)); err != nil {
				return err
			}
		}
		return nil
	}
	return printList(c.Stdout, entries, status)
}

func (c Command) show(ctx context.Context, args []string) error {
	fs := c.flags("show")
	asJSON := fs.Bool("json", false, "print the entry as JSON")
	ids, err := cli.ParseFlags(fs, args, true, c.Stdout, c.help(fs, "show [--json] ID",
		"Prints one poison-queue entry whole: where it came from, why it failed, what became of it,\nits metadata, and its payload (indented if it is JSON)."))
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("show needs one entry id (see %s poison list)", c.Service)
	}
	queue, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	e, err := queue.Entry(ctx, ids[0])
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(poisonhttp.NewPoisonEntryJSON(e))
	}
	return printEntry(c.Stdout, e)
}

func (c Command) requeue(ctx context.Context, args []string) error {
	fs := c.flags("requeue")
	all := fs.Bool("all", false, "requeue every new entry")
	dryRun := fs.Bool("dry-run", false, "only print what would be requeued")
	by := fs.String("by", os.Getenv("USER"), "who requeues, for the record")
	ids, err := cli.ParseFlags(fs, args, true, c.Stdout, c.help(fs, "requeue [--dry-run] [--by NAME] ID... | --all",
		"Publishes each entry's message back to its original topic and partition, with its original key\n"+
			"and metadata"+
			" (without the poison queue's own) plus requeued_from and requeued_at, and marks it requeued.\n"+
			"Entries that are not new are left alone. Every id is checked before anything is published."))
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return fmt.Errorf("requeue needs either entry ids or --all (see %s poison requeue --help)", c.Service)
	}
	queue, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	outcomes, err := queue.Requeue(ctx, poisonapp.RequeueRequest{IDs: ids, All: *all, By: *by, DryRun: *dryRun})
	printOutcomes(c.Stdout, outcomes)
	if err == nil && *all && len(outcomes) == 0 {
		fmt.Fprintln(c.Stdout, "No new entries to requeue.")
	}
	return err
}

func (c Command) discard(ctx context.Context, args []string) error {
	fs := c.flags("discard")
	reason := fs.String("reason", "", "why the messages are set aside (required)")
	by := fs.String("by", os.Getenv("USER"), "who discards, for the record")
	ids, err := cli.ParseFlags(fs, args, true, c.Stdout, c.help(fs, "discard --reason TEXT [--by NAME] ID...",
		"Marks entries handled without publishing them, with the reason why. Entries that are not new\nare left alone."))
	if err != nil {
		return err
	}
	if *reason == "" {
		return errors.New("discard needs --reason TEXT: say why the messages are set aside")
	}
	if len(ids) == 0 {
		return fmt.Errorf("discard needs entry ids (see %s poison list)", c.Service)
	}
	queue, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	outcomes, err := queue.Discard(ctx, ids, *reason, *by)
	printOutcomes(c.Stdout, outcomes)
	return err
}

// help prints a poison command's synopsis, description and flags.
func (c Command) help(fs *flag.FlagSet, synopsis, description string) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "Usage: %s poison %s\n\n%s\n\nFlags:\n", c.Service, synopsis, description)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
