// Package manpage reads the mdoc(7) manual pages in man/ so that tests can
// hold them to the commands they describe: the options a page lists must be
// the flags its command declares, and the variables diskdump(5) lists must
// be those of the shipped configuration file.
//
// Entry points: Parse reads a page; CheckFlags compares its OPTIONS and
// SYNOPSIS with a command's flag.FlagSet; CheckSections checks the section
// order; Page.Variables lists the VARIABLES of a file-format page.
package manpage

import (
	"fmt"
	"strings"
)

// maxPageBytes bounds the pages Parse accepts: a manual page is a few KiB.
const maxPageBytes = 1 << 20

// Page is a parsed manual page: its sections in order and the macro lines
// of each.
type Page struct {
	// Path names the page in error messages.
	Path string
	// Sections are the .Sh names in the order they appear.
	Sections []string
	// Lines are the macro lines, each with its section.
	Lines []Line
}

// Line is one macro line of a page, split into words.
type Line struct {
	N       int      // 1-based line number
	Section string   // the .Sh it belongs to; "" before the first
	Macro   string   // the first word without the dot, e.g. "It"
	Args    []string // the words after the macro, quotes removed
}

// Error locates a problem in a page.
type Error struct {
	Path string
	Line int // 0 when the problem is the page as a whole
	Msg  string
}

// Error names the page and, when known, the line.
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// Parse splits the mdoc source src into sections and macro lines. Text
// lines and comments are skipped. path names the page in errors.
func Parse(path string, src []byte) (*Page, error) {
	if len(src) > maxPageBytes {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("page larger than %d bytes", maxPageBytes)}
	}
	p := &Page{Path: path}
	section := ""
	for i, text := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(text, ".") || strings.HasPrefix(text, `.\"`) {
			continue
		}
		words, err := splitWords(text[1:])
		if err != nil {
			return nil, &Error{Path: path, Line: i + 1, Msg: err.Error()}
		}
		if len(words) == 0 {
			continue
		}
		l := Line{N: i + 1, Macro: words[0], Args: words[1:]}
		if l.Macro == "Sh" {
			if len(l.Args) == 0 {
				return nil, &Error{Path: path, Line: l.N, Msg: ".Sh without a section name"}
			}
			section = strings.Join(l.Args, " ")
			p.Sections = append(p.Sections, section)
		}
		l.Section = section
		p.Lines = append(p.Lines, l)
	}
	if len(p.Sections) == 0 {
		return nil, &Error{Path: path, Msg: "no .Sh section: not an mdoc page"}
	}
	return p, nil
}

// splitWords splits a macro line at blanks; a word in double quotes may
// hold blanks, and "" inside it stands for one quote.
func splitWords(s string) ([]string, error) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return words, nil
		}
		if s[0] != '"' {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			words = append(words, s[:end])
			s = s[end:]
			continue
		}
		var w strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] != '"' {
				w.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '"' {
				w.WriteByte('"')
				i++
				continue
			}
			break
		}
		if i >= len(s) {
			return nil, fmt.Errorf("unterminated quote in macro line")
		}
		words = append(words, w.String())
		s = s[i+1:]
	}
}

// CheckSections reports the sections of want that p lacks or has out of
// the order of want. Other sections may come between them.
func CheckSections(p *Page, want ...string) error {
	at := map[string]int{}
	for i, s := range p.Sections {
		if _, dup := at[s]; !dup {
			at[s] = i
		}
	}
	prev, prevName := -1, ""
	for _, w := range want {
		i, ok := at[w]
		switch {
		case !ok:
			return &Error{Path: p.Path, Msg: fmt.Sprintf("section %s missing: add .Sh %s", w, w)}
		case i < prev:
			return &Error{Path: p.Path, Msg: fmt.Sprintf("section %s comes before %s: want the order %s", w, prevName, strings.Join(want, ", "))}
		}
		prev, prevName = i, w
	}
	return nil
}

// Variables returns the environment-style names that the .It Ev items of
// section VARIABLES define, with their lines, in page order.
func (p *Page) Variables() []Line {
	var vars []Line
	for _, l := range p.Lines {
		if l.Section == "VARIABLES" && l.Macro == "It" && len(l.Args) >= 2 && l.Args[0] == "Ev" {
			vars = append(vars, Line{N: l.N, Section: l.Section, Macro: "Ev", Args: l.Args[1:2]})
		}
	}
	return vars
}
