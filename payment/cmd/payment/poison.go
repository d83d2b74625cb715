package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/poison"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/logs"
)

const poisonUsage = `Usage: payment poison COMMAND [flags]

The poison queue holds the messages the consumer gave up on after its retries,
kept in the payment database (table poison_messages) with where they came from
and why they failed. Fix the cause, then requeue them, or discard them.

Commands:
  list [--json] [--status new|requeued|discarded|all]
  show [--json] ID
  requeue [--dry-run] [--by NAME] ID... | --all
  discard --reason TEXT [--by NAME] ID...

"payment poison COMMAND --help" describes a command's flags.
`

// poisonCommand runs the poison-queue commands against the payment database
// (and Kafka, to requeue) named by the environment.
type poisonCommand struct {
	ctx    context.Context
	cfg    service.Config
	stdout io.Writer
}

func (c poisonCommand) run(args []string) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-help" || args[0] == "-h") {
		fmt.Fprint(c.stdout, poisonUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return errors.New("poison needs a command: list, show, requeue or discard (see payment poison --help)")
	}
	switch command, args := args[0], args[1:]; command {
	case "list":
		return c.list(args)
	case "show":
		return c.show(args)
	case "requeue":
		return c.requeue(args)
	case "discard":
		return c.discard(args)
	default:
		return fmt.Errorf("unknown poison command %q (see payment poison --help)", command)
	}
}

// open connects to the poison store; call the returned function when done.
func (c poisonCommand) open() (*app.PoisonQueue, func(), error) {
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	// The commands print what they did; their logs only add problems.
	level := c.cfg.LogLevel
	if level == "info" {
		level = "warn"
	}
	return service.OpenPoisonQueue(ctx, c.cfg, logs.New("payment", level))
}

func (c poisonCommand) list(args []string) error {
	fs := flag.NewFlagSet("payment poison list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON, one object per entry")
	statusFlag := fs.String("status", string(poison.StatusNew), "list entries with this status: new, requeued, discarded or all")
	rest, err := parseFlags(fs, args, true, c.stdout, commandHelp(fs, "list [--json] [--status new|requeued|discarded|all]",
		"Lists poison-queue entries, oldest first: by default those nobody has handled yet."))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (see payment poison list --help)", rest[0])
	}
	status, err := poison.ParseStatusFilter(*statusFlag)
	if err != nil {
		return fmt.Errorf("--status: %w", err)
	}
	queue, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	entries, err := queue.List(c.ctx, status)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, e := range entries {
			if err := enc.Encode(ports.NewPoisonEntryJSON(e)); err != nil {
				return err
			}
		}
		return nil
	}
	return printList(c.stdout, entries, status)
}

func (c poisonCommand) show(args []string) error {
	fs := flag.NewFlagSet("payment poison show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the entry as JSON")
	ids, err := parseFlags(fs, args, true, c.stdout, commandHelp(fs, "show [--json] ID",
		"Prints one poison-queue entry whole: where it came from, why it failed, what became of it,\nits metadata, and its payload (indented if it is JSON)."))
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return errors.New("show needs one entry id (see payment poison list)")
	}
	queue, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	e, err := queue.Entry(c.ctx, ids[0])
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ports.NewPoisonEntryJSON(e))
	}
	return printEntry(c.stdout, e)
}

func (c poisonCommand) requeue(args []string) error {
	fs := flag.NewFlagSet("payment poison requeue", flag.ContinueOnError)
	all := fs.Bool("all", false, "requeue every new entry")
	dryRun := fs.Bool("dry-run", false, "only print what would be requeued")
	by := fs.String("by", os.Getenv("USER"), "who requeues, for the record")
	ids, err := parseFlags(fs, args, true, c.stdout, commandHelp(fs, "requeue [--dry-run] [--by NAME] ID... | --all",
		"Publishes each entry's message back to its original topic, with its original key and metadata\n"+
			"(without the poison queue's own) plus requeued_from and requeued_at, and marks it requeued.\n"+
			"Entries that are not new are left alone. Every id is checked before anything is published."))
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return errors.New("requeue needs either entry ids or --all (see payment poison requeue --help)")
	}
	queue, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	outcomes, err := queue.Requeue(c.ctx, app.RequeueRequest{IDs: ids, All: *all, By: *by, DryRun: *dryRun})
	printOutcomes(c.stdout, outcomes)
	if err == nil && *all && len(outcomes) == 0 {
		fmt.Fprintln(c.stdout, "No new entries to requeue.")
	}
	return err
}

func (c poisonCommand) discard(args []string) error {
	fs := flag.NewFlagSet("payment poison discard", flag.ContinueOnError)
	reason := fs.String("reason", "", "why the messages are set aside (required)")
	by := fs.String("by", os.Getenv("USER"), "who discards, for the record")
	ids, err := parseFlags(fs, args, true, c.stdout, commandHelp(fs, "discard --reason TEXT [--by NAME] ID...",
		"Marks entries handled without publishing them, with the reason why. Entries that are not new\nare left alone."))
	if err != nil {
		return err
	}
	if *reason == "" {
		return errors.New("discard needs --reason TEXT: say why the messages are set aside")
	}
	if len(ids) == 0 {
		return errors.New("discard needs entry ids (see payment poison list)")
	}
	queue, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	outcomes, err := queue.Discard(c.ctx, ids, *reason, *by)
	printOutcomes(c.stdout, outcomes)
	return err
}

// commandHelp prints a poison command's synopsis, description and flags.
func commandHelp(fs *flag.FlagSet, synopsis, description string) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "Usage: payment poison %s\n\n%s\n\nFlags:\n", synopsis, description)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
