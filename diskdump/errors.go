package diskdump

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers branch on. Typed errors below wrap them so that
// errors.Is works through the position information.
var (
	// ErrNoDump means block 1 of the partition does not carry a dump header.
	ErrNoDump = errors.New("diskdump: no dump on the partition")
	// ErrTruncated means the data ends before a structure that must be there.
	ErrTruncated = errors.New("diskdump: truncated")
	// ErrUnsupportedVersion means a header_version or layout this package cannot read.
	ErrUnsupportedVersion = errors.New("diskdump: unsupported version")
	// ErrBadSignature means a block does not carry the expected signature.
	ErrBadSignature = errors.New("diskdump: bad signature")
	// ErrCorrupt means a field holds an impossible value.
	ErrCorrupt = errors.New("diskdump: corrupt")
	// ErrTooSmall means the partition cannot hold what it must hold.
	ErrTooSmall = errors.New("diskdump: partition too small")
)

// FormatError locates a problem in on-disk data: the byte offset from the
// start of the partition or file, the block number when known (-1 otherwise),
// and the name of the field at fault.
type FormatError struct {
	Off   int64  // byte offset of the field, from the start of the device or file
	Blk   int64  // block number holding the field, -1 if not block-addressed
	Field string // C name of the field or structure, e.g. "bitmap_blocks"
	Msg   string // what is wrong
	Err   error  // sentinel or underlying cause
}

func (e *FormatError) Error() string {
	loc := fmt.Sprintf("offset 0x%x", e.Off)
	if e.Blk >= 0 {
		loc = fmt.Sprintf("block %d (offset 0x%x)", e.Blk, e.Off)
	}
	s := "diskdump: " + loc
	if e.Field != "" {
		s += " field " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + trimPkg(e.Err.Error())
	}
	return s
}

// Unwrap returns the sentinel or cause.
func (e *FormatError) Unwrap() error { return e.Err }

// PageError reports a page that could not be recovered: its PFN, the byte
// offset of its data (or record) on the device, and why.
type PageError struct {
	PFN uint64 // page frame number, or NoPFN when the record cannot be attributed
	Off int64  // byte offset on the device
	Err error
}

// NoPFN is the PFN of a PageError that cannot be attributed to a page.
const NoPFN = ^uint64(0)

func (e *PageError) Error() string {
	pfn := fmt.Sprintf("PFN %d", e.PFN)
	if e.PFN == NoPFN {
		pfn = "unattributed record"
	}
	return fmt.Sprintf("diskdump: %s at offset 0x%x: %s", pfn, e.Off, trimPkg(e.Err.Error()))
}

// Unwrap returns the cause.
func (e *PageError) Unwrap() error { return e.Err }

func trimPkg(s string) string {
	const p = "diskdump: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func fieldErr(off, blk int64, field string, err error, format string, args ...any) *FormatError {
	return &FormatError{Off: off, Blk: blk, Field: field, Msg: fmt.Sprintf(format, args...), Err: err}
}
