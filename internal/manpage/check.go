package manpage

import (
	"errors"
	"flag"
	"io"
	"os"
)

// CommandSections are the sections every command page has, in this order.
var CommandSections = []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"}

// Load reads and parses the page at path.
func Load(path string) (*Page, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxPageBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Check loads the page of command cmd at path and reports, all at once,
// the CommandSections it lacks and every difference between its options
// and fs (see CheckFlags). A command's man_test.go calls it with the flag
// set the command parses its arguments with.
func Check(path, cmd string, fs *flag.FlagSet) error {
	p, err := Load(path)
	if err != nil {
		return err
	}
	return errors.Join(CheckSections(p, CommandSections...), CheckFlags(p, cmd, fs))
}
