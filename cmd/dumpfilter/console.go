package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dsnet/golib/unitconv"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/vmcore"
)

// console prints dumpfilter's messages on stderr, one line per event, and
// its progress when asked (-p) or when stderr is a terminal.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	f        *flags
	show     bool
	terminal bool
	last     time.Time
	shown    bool
}

func newConsole(w io.Writer, f *flags) *console {
	c := &console{w: w, f: f, show: f.prog}
	if file, ok := w.(*os.File); ok && blockdev.IsTerminal(file) {
		c.terminal = true
		c.show = c.show || !f.quiet
	}
	return c
}

func (c *console) line(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown && c.terminal {
		io.WriteString(c.w, "\r\033[K")
		c.shown = false
	}
	fmt.Fprintf(c.w, "dumpfilter: "+format+"\n", args...)
}

func (c *console) errorf(format string, args ...any) { c.line(format, args...) }

func (c *console) infof(format string, args ...any) {
	if !c.f.quiet {
		c.line(format, args...)
	}
}

func (c *console) debugf(format string, args ...any) {
	if c.f.verbose {
		c.line(format, args...)
	}
}

// progress is vmcore.Options.Progress: at most a line a second (rewritten in
// place on a terminal).
func (c *console) progress(done, total int64) {
	if !c.show {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.last) < time.Second && done < total {
		return
	}
	c.last = now
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	msg := fmt.Sprintf("dumpfilter: %s of %s read (%.0f%%)", iec(float64(done)), iec(float64(total)), pct)
	if c.terminal {
		fmt.Fprintf(c.w, "\r\033[K%s", msg)
		c.shown = true
		return
	}
	fmt.Fprintln(c.w, msg)
}

// summary says what NEW holds and what the level could not do.
func (c *console) summary(j *job, vf *vmcore.File, res *vmcore.Result) {
	c.infof("%s: %d pages kept, %d left out by dump_level %d, %s (%v)", j.new, res.Pages, res.Excluded, j.flags.level,
		iec(float64(res.Size)), res.Format)
	if res.DumpLevelUnapplied != 0 {
		c.infof("%s: dump_level bits %d not applied: %s", j.new, int(res.DumpLevelUnapplied), unappliedReason(vf, res.DumpLevelUnapplied))
	}
	if res.Lost > 0 {
		c.infof("%s: %d pages of %s could not be read and are missing from NEW too", j.new, res.Lost, j.old)
	}
	c.debugf("%s: level %d applied, %d zero pages, input %v of %d pages", j.new, int(res.DumpLevel), res.ZeroPages, vf.Format(), vf.NumPages())
}

// unappliedReason explains why bits of the level could not be applied.
func unappliedReason(vf *vmcore.File, l vmcore.DumpLevel) string {
	if l&^vmcore.ExcludeFree == 0 {
		return "free pages cannot be told apart after the dump"
	}
	return fmt.Sprintf("a %v file carries no page flags, only zero pages (2) can be recognised", vf.Format())
}

func iec(v float64) string { return unitconv.FormatPrefix(v, unitconv.IEC, 1) + "B" }
