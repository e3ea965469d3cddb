// Tests of the manual pages as a set: every command has a page that its own
// man_test.go checks, every page renders without a warning, and diskdump(5)
// lists exactly the variables of the shipped configuration file and of the
// rc script. The options of each command page are checked in the command's
// package (cmd/NAME/man_test.go), where its flag set is.
package man_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/manpage"
	"github.com/dumpkit/dumpkit/savecore"
)

// needTool skips when name is not installed, except in CI, where .ci/run
// installs it and a skip would hide a missing check.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (apt-get install man-db): required in CI", name)
		}
		t.Skipf("%s not installed (apt-get install man-db)", name)
	}
}

// commands are the directories of cmd/.
func commands(t *testing.T) []string {
	dirs, err := os.ReadDir("../cmd")
	require.NoError(t, err)
	var cmds []string
	for _, d := range dirs {
		if d.IsDir() {
			cmds = append(cmds, d.Name())
		}
	}
	require.NotEmpty(t, cmds)
	return cmds
}

func TestEveryCommandHasCheckedPage(t *testing.T) {
	for _, cmd := range commands(t) {
		t.Run(cmd, func(t *testing.T) {
			page := cmd + ".8"
			_, err := os.Stat(page)
			require.NoError(t, err, "cmd/%s has no manual page: write man/%s (mdoc; see man/savecore.8)", cmd, page)
			test := filepath.Join("..", "cmd", cmd, "man_test.go")
			src, err := os.ReadFile(test)
			require.NoError(t, err, "cmd/%s has no man_test.go: copy cmd/savecore/man_test.go and pass its newFlagSet", cmd)
			assert.Contains(t, string(src), `manpage.Check("../../man/`+page+`", "`+cmd+`"`,
				"%s must check man/%s against the flags of %s", test, page, cmd)
		})
	}
}

func pages(t *testing.T) []string {
	p, err := filepath.Glob("*.[1-9]")
	require.NoError(t, err)
	require.NotEmpty(t, p)
	return p
}

// TestPagesRender formats every page with groff's mdoc macros, as man -l
// does, and fails on any warning; the rendered text must carry the
// section headings.
func TestPagesRender(t *testing.T) {
	needTool(t, "groff")
	for _, page := range pages(t) {
		t.Run(page, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := exec.Command("groff", "-mandoc", "-Tutf8", "-ww", page)
			cmd.Stdout, cmd.Stderr = &out, &errb
			require.NoError(t, cmd.Run(), "groff: %s", errb.String())
			assert.Empty(t, errb.String(), "groff warnings")
			p, err := manpage.Load(page)
			require.NoError(t, err)
			// Drop the overstriking that marks bold and underlined text.
			text := regexp.MustCompile(".\b").ReplaceAllString(out.String(), "")
			for _, s := range p.Sections {
				assert.True(t, strings.Contains(text, "\n"+s+"\n"), "rendered %s lacks the heading %s", page, s)
			}
			name := strings.ToUpper(strings.TrimSuffix(page, filepath.Ext(page)))
			assert.True(t, strings.HasPrefix(text, name+"("+filepath.Ext(page)[1:]+")"),
				"rendered %s does not start with its title %s(%s)", page, name, filepath.Ext(page)[1:])
		})
	}
}

func TestCommandPageSections(t *testing.T) {
	for _, cmd := range commands(t) {
		p, err := manpage.Load(cmd + ".8")
		require.NoError(t, err)
		assert.NoError(t, manpage.CheckSections(p, manpage.CommandSections...))
	}
}

// sysconfigVars returns the names the commented example assigns, each
// line "#NAME=value" with the '#' removed, and the file with every such
// line uncommented.
func sysconfigVars(t *testing.T) ([]string, string) {
	b, err := os.ReadFile("../packaging/diskdump.sysconfig")
	require.NoError(t, err)
	assign := regexp.MustCompile(`^#([A-Z_][A-Z0-9_]*)=`)
	var names []string
	var live strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if m := assign.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
			line = line[1:]
		}
		live.WriteString(line + "\n")
	}
	require.NoError(t, sc.Err())
	return names, live.String()
}

// TestSysconfig: the packaged /etc/sysconfig/diskdump sets nothing (so the
// installed service does nothing until the admin names a DEVICE), savecore
// accepts it and its example values, and it, diskdump(5) and the variables
// the rc script reads name the same variables.
func TestSysconfig(t *testing.T) {
	names, live := sysconfigVars(t)
	f, err := os.Open("../packaging/diskdump.sysconfig")
	require.NoError(t, err)
	defer f.Close()
	cfg, err := savecore.ParseConfig(f, "diskdump.sysconfig")
	require.NoError(t, err)
	assert.Empty(t, cfg.Vars, "the packaged configuration must assign nothing")
	cfg, err = savecore.ParseConfig(strings.NewReader(live), "diskdump.sysconfig, uncommented")
	require.NoError(t, err, "an example value of the configuration is refused by savecore")
	assert.Equal(t, []string{"/dev/sdb1", "/dev/sdc1"}, cfg.Devices)

	p, err := manpage.Load("diskdump.5")
	require.NoError(t, err)
	require.NoError(t, manpage.CheckSections(p, "NAME", "SYNOPSIS", "DESCRIPTION", "VARIABLES", "FILES", "EXAMPLES", "SEE ALSO"))
	var documented []string
	for _, v := range p.Variables() {
		documented = append(documented, v.Args[0])
	}
	assert.Equal(t, names, documented, "man/diskdump.5 VARIABLES and packaging/diskdump.sysconfig must list the same variables in the same order")

	for _, v := range rcVars(t) {
		assert.Contains(t, names, v, "dist/diskdump.init reads %s: document it in packaging/diskdump.sysconfig and man/diskdump.5", v)
	}
}

// rcVars returns the configuration variables dist/diskdump.init reads: the
// ones it empties before sourcing the file.
func rcVars(t *testing.T) []string {
	b, err := os.ReadFile("../dist/diskdump.init")
	require.NoError(t, err)
	src := string(b)
	at := strings.Index(src, "\nDEVICE=\n")
	require.GreaterOrEqual(t, at, 0, "dist/diskdump.init no longer empties DEVICE before reading the configuration; update this test")
	var vars []string
	for _, line := range strings.Split(src[at+1:], "\n") {
		name, ok := strings.CutSuffix(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_]+$`).MatchString(name) {
			break
		}
		vars = append(vars, name)
	}
	require.True(t, slices.Contains(vars, "DUMPDIR"), "found %v", vars)
	return vars
}
