// Package cli holds what the project's commands share: flag parsing that
// keeps errors to one line, errors of one line, and how a command ends.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit ends command with err: nothing more if err is nil or flag.ErrHelp
// (help was printed), otherwise "command: err" on stderr and exit status 1.
// An error already prefixed with the command's name is not prefixed again.
func Exit(command string, err error) {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, command+":", strings.TrimPrefix(err.Error(), command+": "))
	os.Exit(1)
}

// ParseFlags parses args with fs and returns the arguments that are not
// flags. With interspersed, flags may follow arguments ("requeue 0-3
// --dry-run"); otherwise parsing stops at the first argument (a command).
// A bad flag is a one-line error naming fs; --help prints help to stdout and
// returns flag.ErrHelp.
func ParseFlags(fs *flag.FlagSet, args []string, interspersed bool, stdout io.Writer, help func(io.Writer)) ([]string, error) {
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

// OneLine returns err shown on one line, for the user to read in one go
// (errors.Join and some clients use several); nil stays nil.
func OneLine(err error) error {
	if err != nil && strings.Contains(err.Error(), "\n") {
		return oneLineError{err}
	}
	return err
}

type oneLineError struct{ err error }

func (e oneLineError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e oneLineError) Unwrap() error { return e.err }
