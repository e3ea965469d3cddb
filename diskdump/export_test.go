package diskdump

import (
	"encoding/binary"
	"time"
)

// TestDump describes a synthetic machine and how the kernel-exact writer of
// diskdump/kernel dumps it. This package's own tests cannot import
// diskdump/kernel (it imports diskdump), so kernel_test.go, an external test
// file of the same test binary, installs writeTestDump at init.
type TestDump struct {
	Arch        Arch
	MemBytes    uint64
	Seed        uint64
	Mix         [5]int // percentages of zero, sparse, text, pattern and random pages
	NoHoles     bool
	NoRandomBad bool
	BadPFNs     []uint64
	Compress    bool
	DumpLevel   int
	StopAfter   int64 // power cut after that many block writes (0: none)
	Time        time.Time
}

// writeTestDump writes d onto the formatted image img of devBlocks blocks
// and returns the image and whether the writer completed the dump.
var writeTestDump func(img []byte, devBlocks uint64, d TestDump) ([]byte, bool, error)

// SetTestDumpWriter installs writeTestDump (called by kernel_test.go).
func SetTestDumpWriter(f func(img []byte, devBlocks uint64, d TestDump) ([]byte, bool, error)) {
	writeTestDump = f
}

// putRecord encodes r with PutRecordHeader, the one record header encoder.
func putRecord(b []byte, o binary.ByteOrder, r pageRecord) {
	PutRecordHeader(b, o, r.pageFlags, r.size, r.flags)
}
