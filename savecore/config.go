package savecore

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// DefaultConfigPath is the sysconfig file of the diskdump service (doc/FORMAT.md §8.1).
const DefaultConfigPath = "/etc/sysconfig/diskdump"

// DefaultDir is the dump root used when neither Options.Dir nor DUMPDIR in
// the configuration names one (doc/FORMAT.md §9.2).
const DefaultDir = "/var/crash"

// Config is the content of /etc/sysconfig/diskdump that savecore uses.
type Config struct {
	// Devices is the DEVICE list, in order: the kernel's fallback order
	// (doc/FORMAT.md §3.5), so every one of them may hold a dump.
	Devices []string
	// DumpDir is DUMPDIR, the dump root; empty when the file does not set it
	// (an extension, doc/FORMAT.md §8.1 [REC]).
	DumpDir string
	// MaxDumps is MAXDUMPS, the dump directories to keep (see
	// Options.MaxDumps); 0 when unset.
	MaxDumps int
	// DumpLevel is DUMPLEVEL, the dump level savecore applies while it
	// saves (Options.DumpLevel); 0 when unset.
	DumpLevel int
	// MinFree is MINFREE in bytes (see ParseMinFree and
	// Options.MinFree); 0 when unset.
	MinFree int64
	// Vars holds every variable the file assigns, after quote removal and
	// expansion, including SAVECORE_OPTS and DISKDUMPFMT_OPTS that the rc
	// script uses.
	Vars map[string]string
}

// ConfigError locates a syntax error in a configuration file.
type ConfigError struct {
	Path string // file name as given
	Line int    // 1-based line of the error
	Msg  string
}

// Error names the file and line.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("savecore: %s:%d: %s", e.Path, e.Line, e.Msg)
}

// LoadConfig reads and parses the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if cfg, ok, err := loadKdumpConf(f, path); ok { // kdump.conf: kdumpconf.go
		return cfg, err
	}
	return ParseConfig(f, path)
}

// maxConfigBytes bounds what ParseConfig reads: a sysconfig file is a few
// lines; anything bigger is not one.
const maxConfigBytes = 1 << 20

// ParseConfig parses a sysconfig file in the subset of shell syntax such
// files use: NAME=VALUE assignments (optionally after "export"), one or more
// per line separated by blanks or ';', values with '...' and "..." quoting,
// backslash escapes and line continuations, $NAME and ${NAME} expanded from
// earlier assignments in the same file (never from the environment), and
// '#' comments. Any other command is an error: the file is not run, so a
// line savecore cannot understand must not be ignored silently. name is
// used in error messages.
//
// DEVICE is split at colons and whitespace (doc/FORMAT.md §8.1), so
// DEVICE=/dev/sda3:/dev/hda and DEVICE="/dev/sda3 /dev/hda" are the same.
func ParseConfig(r io.Reader, name string) (*Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigBytes {
		return nil, &ConfigError{Path: name, Line: 1, Msg: fmt.Sprintf("file larger than %d bytes", maxConfigBytes)}
	}
	p := &confParser{src: string(b), name: name, line: 1, vars: map[string]string{}, lines: map[string]int{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	c := &Config{Vars: p.vars, DumpDir: p.vars["DUMPDIR"], Devices: SplitDevices(p.vars["DEVICE"])}
	if err := p.limits(c); err != nil {
		return nil, err
	}
	return c, nil
}

// limits parses MAXDUMPS and MINFREE, when set and not empty.
func (p *confParser) limits(c *Config) error {
	if v := p.vars["MAXDUMPS"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return &ConfigError{Path: p.name, Line: p.lines["MAXDUMPS"],
				Msg: fmt.Sprintf("MAXDUMPS=%q: want the number of dump directories to keep (0: all)", v)}
		}
		c.MaxDumps = n
	}
	if v := p.vars["DUMPLEVEL"]; v != "" {
		n, err := ParseDumpLevel(v)
		if err != nil {
			return &ConfigError{Path: p.name, Line: p.lines["DUMPLEVEL"],
				Msg: fmt.Sprintf("DUMPLEVEL=%q: want diskdump's dump_level, 0 to 31", v)}
		}
		c.DumpLevel = n
	}
	if v := p.vars["MINFREE"]; v != "" {
		n, err := ParseMinFree(v)
		if err != nil {
			return &ConfigError{Path: p.name, Line: p.lines["MINFREE"],
				Msg: fmt.Sprintf("MINFREE=%q: want KiB to keep free, or a size such as 512Mi", v)}
		}
		c.MinFree = n
	}
	return nil
}

// SplitDevices splits a DEVICE value at colons and whitespace, dropping
// empty fields.
func SplitDevices(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ':' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(f) == 0 {
		return nil
	}
	return f
}

type confParser struct {
	src  string
	pos  int
	name string
	line int
	vars map[string]string
	// lines holds the line of each variable's last assignment.
	lines map[string]int
}

func (p *confParser) errf(format string, args ...any) error {
	return &ConfigError{Path: p.name, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *confParser) eof() bool { return p.pos >= len(p.src) }

func (p *confParser) peek() byte { return p.src[p.pos] }

// next consumes one byte, counting lines.
func (p *confParser) next() byte {
	c := p.src[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c
}

// skipBlanks skips spaces, tabs and backslash-newline continuations.
func (p *confParser) skipBlanks() {
	for !p.eof() {
		switch c := p.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.next()
			p.next()
		default:
			return
		}
	}
}

func (p *confParser) parse() error {
	for {
		p.skipBlanks()
		if p.eof() {
			return nil
		}
		switch p.peek() {
		case '\n', ';':
			p.next()
			continue
		case '#':
			for !p.eof() && p.peek() != '\n' {
				p.pos++
			}
			continue
		}
		line := p.line
		word, assign, err := p.word()
		if err != nil {
			return err
		}
		if assign {
			continue
		}
		if word == "export" {
			// "export NAME=VALUE" and "export NAME": exporting only matters
			// to child processes, so the names after it are assignments or
			// bare names, both fine.
			for !p.atEndOfCommand() {
				w, assign, err := p.word()
				if err != nil {
					return err
				}
				if !assign && !isName(w) {
					return p.errf("export: not a variable name: %q", w)
				}
			}
			continue
		}
		p.line = line
		return p.errf("not an assignment: %q (only NAME=VALUE lines are understood; quote values with blanks)", word)
	}
}

// atEndOfCommand reports whether only blanks remain before the end of the
// line, a ';' or a comment.
func (p *confParser) atEndOfCommand() bool {
	p.skipBlanks()
	return p.eof() || p.peek() == '\n' || p.peek() == ';' || p.peek() == '#'
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// word reads one shell word. When it starts with NAME= the assignment is
// performed and assign is true; otherwise the word's text is returned.
func (p *confParser) word() (text string, assign bool, err error) {
	start := p.pos
	for !p.eof() && isName(p.src[start:p.pos+1]) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name != "" && !p.eof() && p.peek() == '=' {
		p.pos++
		line := p.line
		val, err := p.value()
		if err != nil {
			return "", false, err
		}
		p.vars[name] = val
		p.lines[name] = line
		return name, true, nil
	}
	p.pos = start
	val, err := p.value()
	return val, false, err
}

// value reads the rest of a word: unquoted text, quoted strings, escapes
// and expansions, up to an unquoted blank, newline, ';' or end of input.
func (p *confParser) value() (string, error) {
	var sb strings.Builder
	for !p.eof() {
		c := p.peek()
		switch c {
		case ' ', '\t', '\r', '\n', ';':
			return sb.String(), nil
		case '\'':
			p.next()
			startLine := p.line
			for {
				if p.eof() {
					p.line = startLine
					return "", p.errf("unterminated single quote")
				}
				c := p.next()
				if c == '\'' {
					break
				}
				sb.WriteByte(c)
			}
		case '"':
			p.next()
			startLine := p.line
			for {
				if p.eof() {
					p.line = startLine
					return "", p.errf("unterminated double quote")
				}
				c := p.next()
				if c == '"' {
					break
				}
				switch c {
				case '\\':
					if p.eof() {
						continue
					}
					switch n := p.peek(); n {
					case '\n':
						p.next()
					case '\\', '"', '$', '`':
						sb.WriteByte(p.next())
					default:
						sb.WriteByte('\\')
					}
				case '$':
					if err := p.expand(&sb); err != nil {
						return "", err
					}
				case '`':
					return "", p.errf("command substitution is not supported")
				default:
					sb.WriteByte(c)
				}
			}
		case '\\':
			p.next()
			if p.eof() {
				continue
			}
			if n := p.next(); n != '\n' {
				sb.WriteByte(n)
			}
		case '$':
			p.next()
			if err := p.expand(&sb); err != nil {
				return "", err
			}
		case '`', '(', ')', '|', '&', '<', '>':
			return "", p.errf("unsupported shell syntax %q", c)
		default:
			p.next()
			sb.WriteByte(c)
		}
	}
	return sb.String(), nil
}

// expand handles what follows a '$': NAME or {NAME}; a lone '$' is literal.
func (p *confParser) expand(sb *strings.Builder) error {
	if p.eof() {
		sb.WriteByte('$')
		return nil
	}
	if p.peek() == '{' {
		end := strings.IndexByte(p.src[p.pos:], '}')
		if end < 0 {
			return p.errf("unterminated ${")
		}
		name := p.src[p.pos+1 : p.pos+end]
		if !isName(name) {
			return p.errf("unsupported expansion ${%s}", name)
		}
		p.pos += end + 1
		return p.lookup(sb, name)
	}
	if p.peek() == '(' {
		return p.errf("command substitution is not supported")
	}
	start := p.pos
	for !p.eof() && isName(p.src[start:p.pos+1]) {
		p.pos++
	}
	if p.pos == start {
		sb.WriteByte('$')
		return nil
	}
	return p.lookup(sb, p.src[start:p.pos])
}

// lookup appends the value of a variable assigned earlier in the file. Any
// other variable ($HOME, ...) is an error rather than an empty string: the
// file is not run by a shell, and a path silently missing its start would
// send the dumps elsewhere.
func (p *confParser) lookup(sb *strings.Builder, name string) error {
	v, ok := p.vars[name]
	if !ok {
		return p.errf("$%s is not assigned earlier in the file (savecore does not read the environment)", name)
	}
	sb.WriteString(v)
	return nil
}
