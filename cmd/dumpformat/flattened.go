package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/vmcore"
)

// A partition of kdump's raw target holds makedumpfile's flattened stream
// from byte 0 (doc/FLATTENED.md §5). For dumpformat it is a dump not saved
// yet: -c says 1, and formatting it needs -f, as for a diskdump dump.

// flattenedDump returns what the flattened stream at the start of dev
// holds, or nil when dev does not start with one. A stream whose records
// cannot be walked (an unknown version) is still a dump.
func flattenedDump(dev io.ReaderAt, size int64) *vmcore.FlattenedSummary {
	block := make([]byte, min(max(size, 0), vmcore.FlattenedStartSize))
	if n, err := dev.ReadAt(block, 0); n < len(block) && err != nil {
		return nil
	}
	if !vmcore.IsFlattened(block) {
		return nil
	}
	sum, err := vmcore.ScanFlattened(dev, size)
	if err != nil {
		return &vmcore.FlattenedSummary{}
	}
	return sum
}

// flattenedJSON is the "flattened" object of -c --json.
type flattenedJSON struct {
	Format     string `json:"format"`
	Complete   bool   `json:"complete"`
	End        string `json:"end"`
	Records    int64  `json:"records"`
	DataBytes  int64  `json:"data_bytes"`
	FileSize   int64  `json:"vmcore_bytes"`
	StreamSize int64  `json:"stream_bytes"`
	CrashTime  string `json:"crash_time,omitempty"`
	Release    string `json:"release,omitempty"`
	Nodename   string `json:"nodename,omitempty"`
	Machine    string `json:"machine,omitempty"`
}

func newFlattenedJSON(s *vmcore.FlattenedSummary) *flattenedJSON {
	j := &flattenedJSON{Format: s.Format.String(), Complete: !s.Stop.Torn(), End: s.Stop.End.String(), Records: s.Records,
		DataBytes: s.DataBytes, FileSize: s.FileSize, StreamSize: s.StreamSize}
	if h := s.Header; h != nil {
		j.CrashTime = h.Time().UTC().Format(time.RFC3339Nano)
		j.Release, j.Nodename, j.Machine = h.Utsname.Release, h.Utsname.Nodename, h.Utsname.Machine
	}
	return j
}

// flattenedReason is the reason -c gives for status 1.
func flattenedReason(s *vmcore.FlattenedSummary) string {
	state := "complete"
	if s.Stop.Torn() {
		state = "torn: " + s.Stop.End.String()
	}
	return fmt.Sprintf("holds a flattened %s dump (kdump raw target, %s) not saved yet: run savecore", s.Format, state)
}

// text is the part of -c -v that describes the stream; "" for nil.
func (j *flattenedJSON) text() string {
	if j == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  stream:      makedumpfile flattened, %d records, %s\n", j.Records, j.End)
	fmt.Fprintf(&b, "  vmcore:      %s, %s rebuilt (%s of record data, stream %s)\n", j.Format, iec(j.FileSize), iec(j.DataBytes), iec(j.StreamSize))
	if j.CrashTime != "" {
		fmt.Fprintf(&b, "  dump time:   %s\n", j.CrashTime)
		fmt.Fprintf(&b, "  utsname:     release %s, nodename %s, machine %s\n", j.Release, j.Nodename, j.Machine)
	}
	return b.String()
}
