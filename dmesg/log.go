package dmesg

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// Layout is one of the three ways kernels have kept their log
// (doc/DMESG.md §1).
type Layout int

// The log layouts, newest first.
const (
	Lockless   Layout = iota + 1 // printk ringbuffer, 5.10 and later (doc/DMESG.md §3)
	Structured                   // printk_log records, 3.5 to 5.9 (doc/DMESG.md §4)
	Legacy                       // flat character ring, before 3.5 (doc/DMESG.md §5)
)

// String names the layout.
func (l Layout) String() string {
	switch l {
	case Lockless:
		return "lockless"
	case Structured:
		return "structured"
	case Legacy:
		return "legacy"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// Record is one message of a lockless or structured log.
type Record struct {
	TsNsec uint64 // time since boot, nanoseconds
	Text   []byte // message text, without prefix or trailing newline
}

// Log is the kernel log read from a dump.
type Log struct {
	Layout  Layout
	Records []Record // lockless and structured layouts
	Raw     []byte   // legacy layout: the ring's bytes in order, unmodified
}

// WriteTo writes the log in the text format of makedumpfile 1.7.2
// --dump-dmesg (doc/DMESG.md §8.1): the raw bytes for the legacy layout;
// otherwise one "[sssss.uuuuuu] " prefixed line per record, continuation
// lines indented and unprintable bytes escaped.
func (l *Log) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	if l.Layout == Legacy {
		_, err := cw.Write(l.Raw)
		return cw.n, err
	}
	bw := bufio.NewWriterSize(cw, 64<<10)
	for _, r := range l.Records {
		writeRecord(bw, r)
	}
	err := bw.Flush()
	return cw.n, err
}

// writeRecord formats one record; bufio.Writer keeps the first error.
func writeRecord(bw *bufio.Writer, r Record) {
	var pfx [40]byte
	p := fmt.Appendf(pfx[:0], "[%5d.%06d] ", r.TsNsec/1e9, r.TsNsec%1e9/1000)
	bw.Write(p)
	for _, c := range r.Text {
		switch {
		case c == '\n':
			bw.WriteByte('\n')
			for range len(p) {
				bw.WriteByte(' ')
			}
		case c >= 0x20 && c <= 0x7e, c >= 0x09 && c <= 0x0d:
			bw.WriteByte(c)
		case c >= 0x80:
			// makedumpfile prints the byte as a sign-extended char.
			fmt.Fprintf(bw, "\\xffffff%02x", c)
		default:
			fmt.Fprintf(bw, "\\x%02x", c)
		}
	}
	bw.WriteByte('\n')
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
