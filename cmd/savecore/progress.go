package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dsnet/golib/unitconv"
)

// console serialises everything savecore writes to stderr: log records and
// the progress line, which is redrawn in place with '\r'. A log record
// arriving while the progress line is shown first ends that line, so the two
// never share a line.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	show     bool   // draw the progress line (-p or a terminal)
	prefix   string // starts status lines: the journal priority, when stderr is the journal
	lineOpen bool   // a progress line is on screen without its newline
	lastLen  int
	now      func() time.Time

	// state of the save in progress, for the line and for SIGUSR1
	dev         string
	done, total int64
	start       time.Time
	lastDraw    time.Time
}

func newConsole(w io.Writer, show bool) *console {
	return &console{w: w, show: show, now: time.Now}
}

// Write lets the console be the slog handler's output.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLineLocked()
	return c.w.Write(p)
}

func (c *console) endLineLocked() {
	if c.lineOpen {
		io.WriteString(c.w, "\n")
		c.lineOpen = false
		c.lastLen = 0
	}
}

// progress is the savecore.Options.Progress callback.
func (c *console) progress(dev string, done, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if dev != c.dev || done < c.done {
		c.endLineLocked()
		c.dev, c.start, c.lastDraw = dev, now, time.Time{}
	}
	c.done, c.total = done, total
	if !c.show {
		return
	}
	final := total > 0 && done >= total
	if !final && now.Sub(c.lastDraw) < 250*time.Millisecond {
		return
	}
	c.lastDraw = now
	line := c.statusLocked(now)
	pad := ""
	if n := c.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(c.w, "\r%s%s", line, pad)
	c.lastLen = len(line)
	c.lineOpen = true
	if final {
		c.endLineLocked()
	}
}

// statusLocked describes the save in progress: bytes, rate and ETA.
func (c *console) statusLocked(now time.Time) string {
	if c.dev == "" {
		return "savecore: examining devices"
	}
	s := fmt.Sprintf("savecore: %s: %sB / %sB", c.dev, iec(c.done), iec(c.total))
	if c.total > 0 {
		s += fmt.Sprintf(" %3d%%", c.done*100/c.total)
	}
	el := now.Sub(c.start).Seconds()
	if el > 0 && c.done > 0 {
		rate := float64(c.done) / el
		s += fmt.Sprintf(" %sB/s", iec(int64(rate)))
		if c.total > c.done {
			eta := time.Duration(float64(c.total-c.done) / rate * float64(time.Second))
			s += " ETA " + clock(eta)
		}
	}
	return s
}

// status prints one status line (SIGUSR1), whether or not progress is shown.
func (c *console) status() {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := c.statusLocked(c.now())
	c.endLineLocked()
	fmt.Fprintln(c.w, c.prefix+line)
}

func iec(n int64) string { return unitconv.FormatPrefix(float64(n), unitconv.IEC, 1) }

// clock formats a duration as H:MM:SS or M:SS.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
