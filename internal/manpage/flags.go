package manpage

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Option is an option a page names: -x (one dash, one letter) or --name.
type Option struct {
	Name   string // without dashes
	Dashes int    // as written: 1 for "Fl x", 2 for "Fl -name"
	Arg    bool   // an Ar follows it on its .It line (OPTIONS only)
	Line   int
}

// String is the option as a reader types it.
func (o Option) String() string { return strings.Repeat("-", o.Dashes) + o.Name }

// nonFlagWords may follow Fl without being an option name: other macros
// and punctuation.
var nonFlagWords = []string{"Ar", "Cm", "Dv", "Ev", "Fl", "Nm", "No", "Ns", "Oc", "Oo", "Op",
	"Pa", "Pq", "Ql", "Sx", "Xr", "|", ",", ";", ".", "(", ")", "[", "]"}

// flagWords returns, for each Fl on the line, the word that follows it.
func flagWords(l Line) []string {
	words := append([]string{l.Macro}, l.Args...)
	var out []string
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "Fl" && !slices.Contains(nonFlagWords, words[i+1]) {
			out = append(out, words[i+1])
		}
	}
	return out
}

// Options returns the options that the .It lines of section OPTIONS name,
// in page order: ".It Fl C Ar config" gives -C with an argument,
// ".It Fl h , Fl -help" gives -h and --help.
func (p *Page) Options() []Option {
	var opts []Option
	for _, l := range p.Lines {
		if l.Section != "OPTIONS" || l.Macro != "It" {
			continue
		}
		arg := slices.Contains(l.Args, "Ar")
		for _, w := range flagWords(l) {
			name, dashes := strings.TrimPrefix(w, "-"), 1
			if name != w {
				dashes = 2
			}
			opts = append(opts, Option{Name: name, Dashes: dashes, Arg: arg, Line: l.N})
		}
	}
	return opts
}

// SynopsisOptions returns the options named in section SYNOPSIS. As in
// BSD pages, "Fl DfpX" names the one-letter options -D, -f, -p and -X, and
// "Fl -verify" names --verify.
func (p *Page) SynopsisOptions() []Option {
	var opts []Option
	for _, l := range p.Lines {
		if l.Section != "SYNOPSIS" {
			continue
		}
		for _, w := range flagWords(l) {
			if name, ok := strings.CutPrefix(w, "-"); ok {
				opts = append(opts, Option{Name: name, Dashes: 2, Line: l.N})
				continue
			}
			for _, r := range w {
				opts = append(opts, Option{Name: string(r), Dashes: 1, Line: l.N})
			}
		}
	}
	return opts
}

// spelling is how a page writes flag name: -x for one letter, --name else.
func spelling(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// CheckFlags compares the options page p lists with the flags of fs, the
// flag set of command cmd, both ways, and says exactly what to change:
// every flag must have an item in OPTIONS (with Ar when it takes a value,
// without when it is a switch) and appear in SYNOPSIS; every option OPTIONS
// or SYNOPSIS names must be a flag. One-letter flags are written -x, longer
// ones --name. When fs does not declare -h or -help, the flag package
// answers them with the usage, so OPTIONS must list -h and --help.
func CheckFlags(p *Page, cmd string, fs *flag.FlagSet) error {
	flags := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = f })
	implicit := map[string]bool{}
	if flags["h"] == nil && flags["help"] == nil {
		implicit["h"], implicit["help"] = true, true
	}
	var errs []error
	add := func(line int, format string, args ...any) {
		errs = append(errs, &Error{Path: p.Path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	listed := map[string]bool{}
	for _, o := range p.Options() {
		f, known := flags[o.Name]
		switch {
		case !known && !implicit[o.Name]:
			add(o.Line, "OPTIONS lists %s, which %s does not declare (newFlagSet): remove the item or declare the flag", o, cmd)
		case listed[o.Name]:
			add(o.Line, "OPTIONS lists %s twice", o)
		case o.String() != spelling(o.Name):
			add(o.Line, "OPTIONS writes %s: write %s (.It Fl %s)", o, spelling(o.Name), strings.TrimPrefix(spelling(o.Name), "-"))
		case known && isBool(f) && o.Arg:
			add(o.Line, "OPTIONS gives %s an argument (Ar), but it is a switch in %s", o, cmd)
		case known && !isBool(f) && !o.Arg:
			add(o.Line, "OPTIONS lists %s without its argument: %s takes a value (add Ar NAME after it)", o, cmd)
		}
		listed[o.Name] = true
	}
	errs = append(errs, missing(p, cmd, flags, implicit, listed)...)
	errs = append(errs, checkSynopsis(p, cmd, flags, implicit)...)
	return errors.Join(errs...)
}

// missing reports the flags, and the implicit -h and --help, that no
// OPTIONS item lists, in name order.
func missing(p *Page, cmd string, flags map[string]*flag.Flag, implicit, listed map[string]bool) []error {
	var names []string
	for n := range flags {
		names = append(names, n)
	}
	for n := range implicit {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	for _, n := range names {
		if listed[n] {
			continue
		}
		item := ".It Fl " + strings.TrimPrefix(spelling(n), "-")
		if f := flags[n]; f != nil && !isBool(f) {
			item += " Ar VALUE"
		}
		errs = append(errs, &Error{Path: p.Path, Msg: fmt.Sprintf("%s flag %s is missing from OPTIONS: add an item %q saying what it does", cmd, spelling(n), item)})
	}
	return errs
}

// checkSynopsis reports options SYNOPSIS names that are not flags, and
// flags (other than -h and --help) that it leaves out.
func checkSynopsis(p *Page, cmd string, flags map[string]*flag.Flag, implicit map[string]bool) []error {
	var errs []error
	seen := map[string]bool{}
	for _, o := range p.SynopsisOptions() {
		seen[o.Name] = true
		if flags[o.Name] == nil && !implicit[o.Name] {
			errs = append(errs, &Error{Path: p.Path, Line: o.Line, Msg: fmt.Sprintf(
				"SYNOPSIS names %s, which %s does not declare (a long flag is written Fl -name; Fl abc means -a -b -c)", o, cmd)})
		}
	}
	var names []string
	for n := range flags {
		if !seen[n] {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		errs = append(errs, &Error{Path: p.Path, Msg: fmt.Sprintf(
			"%s flag %s is missing from SYNOPSIS: add it, e.g. \".Op Fl %s\"", cmd, spelling(n), strings.TrimPrefix(spelling(n), "-"))})
	}
	return errs
}
