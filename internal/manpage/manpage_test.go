package manpage

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// page is a small command page in the shape of man/*.8.
const page = `.\" a comment with .It Fl Z in it
.Dd December 3, 2026
.Dt TOOL 8
.Os dumpkit
.Sh NAME
.Nm tool
.Nd test tool
.Sh SYNOPSIS
.Nm
.Op Fl Dq
.Op Fl d Ar dir
.Op Fl F Ar format
.Op Fl -verify
.Nm
.Fl V
.Sh DESCRIPTION
Text with -Z and
.Fl Z
outside OPTIONS.
.Sh OPTIONS
.Bl -tag -width Ds
.It Fl D
delete
.It Fl d Ar dir
dump root
.It Fl F Ar format
format:
.Bl -tag -compact
.It Cm elf
ELF
.El
.It Fl q
quiet
.It Fl V
version
.It Fl -verify
verify
.It Fl h , Fl -help
help
.El
.Sh EXIT STATUS
.Sh FILES
.Sh EXAMPLES
.Sh SEE ALSO
.Xr "crash" 8
`

// toolFlags is the flag set page describes, before edits.
func toolFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	fs.Bool("D", false, "")
	fs.String("d", "", "")
	fs.String("F", "", "")
	fs.Bool("q", false, "")
	fs.Bool("V", false, "")
	fs.Bool("verify", false, "")
	return fs
}

func TestParse(t *testing.T) {
	p, err := Parse("tool.8", []byte(page))
	require.NoError(t, err)
	assert.Equal(t, CommandSections, p.Sections)
	assert.Equal(t, []Option{
		{Name: "D", Dashes: 1, Line: 22}, {Name: "d", Dashes: 1, Arg: true, Line: 24},
		{Name: "F", Dashes: 1, Arg: true, Line: 26}, {Name: "q", Dashes: 1, Line: 32},
		{Name: "V", Dashes: 1, Line: 34}, {Name: "verify", Dashes: 2, Line: 36},
		{Name: "h", Dashes: 1, Line: 38}, {Name: "help", Dashes: 2, Line: 38},
	}, p.Options())
	var syn []string
	for _, o := range p.SynopsisOptions() {
		syn = append(syn, o.String())
	}
	assert.Equal(t, []string{"-D", "-q", "-d", "-F", "--verify", "-V"}, syn)
	last := p.Lines[len(p.Lines)-1]
	assert.Equal(t, Line{N: 45, Section: "SEE ALSO", Macro: "Xr", Args: []string{"crash", "8"}}, last)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"no sections", ".Dd today\nText\n", "x.8: no .Sh section: not an mdoc page"},
		{"empty Sh", ".Sh NAME\n.Sh\n", "x.8:2: .Sh without a section name"},
		{"open quote", ".Sh NAME\n.Nd \"half\n", "x.8:2: unterminated quote in macro line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.8", []byte(tc.src))
			var pe *Error
			require.ErrorAs(t, err, &pe)
			assert.EqualError(t, err, tc.want)
		})
	}
	_, err := Parse("big.8", make([]byte, maxPageBytes+1))
	assert.EqualError(t, err, "big.8: page larger than 1048576 bytes")
}

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(fs *flag.FlagSet) // changes the command
		page  func(string) string    // changes the page
		wants []string               // the joined error, one message a line
	}{
		{name: "equal", wants: nil},
		{name: "new flag", edit: func(fs *flag.FlagSet) { fs.Int("max-dumps", 0, "") }, wants: []string{
			`tool.8: tool flag --max-dumps is missing from OPTIONS: add an item ".It Fl -max-dumps Ar VALUE" saying what it does`,
			`tool.8: tool flag --max-dumps is missing from SYNOPSIS: add it, e.g. ".Op Fl -max-dumps"`}},
		{name: "new switch", edit: func(fs *flag.FlagSet) { fs.Bool("check", false, "") }, wants: []string{
			`tool.8: tool flag --check is missing from OPTIONS: add an item ".It Fl -check" saying what it does`,
			`tool.8: tool flag --check is missing from SYNOPSIS: add it, e.g. ".Op Fl -check"`}},
		{name: "flag removed", edit: nil, page: replace(".It Fl q\n", ".It Fl q\nq\n.It Fl Z\n"), wants: []string{
			`tool.8:34: OPTIONS lists -Z, which tool does not declare (newFlagSet): remove the item or declare the flag`}},
		{name: "synopsis names a non-flag", page: replace(".Op Fl Dq\n", ".Op Fl Dqz\n"), wants: []string{
			`tool.8:10: SYNOPSIS names -z, which tool does not declare (a long flag is written Fl -name; Fl abc means -a -b -c)`}},
		{name: "long flag with one dash", page: replace(".It Fl -verify\n", ".It Fl verify\n"), wants: []string{
			`tool.8:36: OPTIONS writes -verify: write --verify (.It Fl -verify)`}},
		{name: "short flag with two dashes", page: replace(".It Fl q\n", ".It Fl -q\n"), wants: []string{
			`tool.8:32: OPTIONS writes --q: write -q (.It Fl q)`}},
		{name: "argument lost", page: replace(".It Fl d Ar dir\n", ".It Fl d\n"), wants: []string{
			`tool.8:24: OPTIONS lists -d without its argument: tool takes a value (add Ar NAME after it)`}},
		{name: "switch given an argument", page: replace(".It Fl D\n", ".It Fl D Ar x\n"), wants: []string{
			`tool.8:22: OPTIONS gives -D an argument (Ar), but it is a switch in tool`}},
		{name: "listed twice", page: replace(".It Fl V\n", ".It Fl V\n.It Fl V\n"), wants: []string{
			`tool.8:35: OPTIONS lists -V twice`}},
		{name: "help missing", page: replace(".It Fl h , Fl -help\n", ".It Fl h\n"), wants: []string{
			`tool.8: tool flag --help is missing from OPTIONS: add an item ".It Fl -help" saying what it does`}},
		{name: "help declared, so not implicit", edit: func(fs *flag.FlagSet) { fs.Bool("h", false, "") }, wants: []string{
			`tool.8:38: OPTIONS lists --help, which tool does not declare (newFlagSet): remove the item or declare the flag`,
			`tool.8: tool flag -h is missing from SYNOPSIS: add it, e.g. ".Op Fl h"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := page
			if tc.page != nil {
				src = tc.page(src)
			}
			p, err := Parse("tool.8", []byte(src))
			require.NoError(t, err)
			fs := toolFlags()
			if tc.edit != nil {
				tc.edit(fs)
			}
			err = CheckFlags(p, "tool", fs)
			if tc.wants == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.wants, "\n"), err.Error())
		})
	}
}

func TestCheckSections(t *testing.T) {
	p := &Page{Path: "x.8", Sections: []string{"NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "OPTIONS"}}
	assert.NoError(t, CheckSections(p, "NAME", "DESCRIPTION"))
	assert.EqualError(t, CheckSections(p, "NAME", "OPTIONS", "EXIT STATUS"),
		"x.8: section EXIT STATUS comes before OPTIONS: want the order NAME, OPTIONS, EXIT STATUS")
	assert.EqualError(t, CheckSections(p, "NAME", "FILES"), "x.8: section FILES missing: add .Sh FILES")
}

func TestVariables(t *testing.T) {
	p, err := Parse("d.5", []byte(".Sh DESCRIPTION\n.It Ev NOTME\n.Sh VARIABLES\n.Bl -tag\n.It Ev DEVICE\nx\n.It Ev DUMPDIR\n.It Pa /x\n.El\n"))
	require.NoError(t, err)
	var names []string
	for _, v := range p.Variables() {
		names = append(names, v.Args[0])
	}
	assert.Equal(t, []string{"DEVICE", "DUMPDIR"}, names)
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tool.8")
	require.NoError(t, os.WriteFile(path, []byte(page), 0o644))
	assert.NoError(t, Check(path, "tool", toolFlags()))
	fs := toolFlags()
	fs.Bool("n", false, "")
	assert.ErrorContains(t, Check(path, "tool", fs), "tool flag -n is missing from OPTIONS")
	_, err := Load(filepath.Join(dir, "absent.8"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParse: any input parses or fails with an *Error, never panics, and
// the options found are those of lines Parse returned.
func FuzzParse(f *testing.F) {
	f.Add([]byte(page))
	for _, name := range []string{"savecore.8", "dumpformat.8", "diskdump.5"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "man", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("f.8", src)
		if err != nil {
			var pe *Error
			require.ErrorAs(t, err, &pe)
			return
		}
		lines := map[int]bool{}
		for _, l := range p.Lines {
			lines[l.N] = true
		}
		for _, o := range append(p.Options(), p.SynopsisOptions()...) {
			require.True(t, lines[o.Line], "option %v on line %d, which is no macro line", o, o.Line)
		}
		_ = CheckFlags(p, "f", toolFlags())
		_ = CheckSections(p, CommandSections...)
	})
}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if strings.Count(s, old) != 1 {
			panic("test page lacks " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}
