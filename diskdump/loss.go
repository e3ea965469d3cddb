package diskdump

import "fmt"

// LossReason says why a page the dump should hold was not recovered.
type LossReason int

// Reasons for lost pages.
const (
	// LostNotWritten: the data lies at or beyond written_blocks; the kernel
	// stopped (partition full, interrupted, strict dump on a small device)
	// before writing it.
	LostNotWritten LossReason = iota
	// LostTruncated: the data lies beyond the end of the device or image
	// although the header says it was written.
	LostTruncated
	// LostUnflushed: interrupted dump, pages written after the last flush
	// of the dumpable bitmap. Their bits are still zero on disk, so their
	// PFNs are unknown and they are dropped (PFN NoPFN).
	LostUnflushed
	// LostNeverWritten: the data (a raw block, or a block of a record past
	// written_blocks) still carries the format signature of its block
	// number; the kernel never wrote it, nor anything after it.
	LostNeverWritten
	// LostCorrupt: the record or page data is corrupt.
	LostCorrupt
	// LostDesync: a corrupt or unreadable record header left the position
	// of the next record unknown. The pages between it and the record start
	// found by resynchronisation are lost; when the records after that
	// point cannot be attributed (the dump is not final, or its end or the
	// record count does not check out) every page after the damage is.
	LostDesync
	// LostIOError: the device failed to read the data.
	LostIOError
	numLossReasons
)

var lossNames = [...]string{
	LostNotWritten:   "not written (beyond written_blocks)",
	LostTruncated:    "beyond the end of the device",
	LostUnflushed:    "written after the last dumpable-bitmap flush (PFN unknown)",
	LostNeverWritten: "never written (block still has its format signature)",
	LostCorrupt:      "corrupt record",
	LostDesync:       "record stream unreadable after a corrupt record",
	LostIOError:      "read error",
}

func (r LossReason) String() string {
	if r >= 0 && r < numLossReasons {
		return lossNames[r]
	}
	return fmt.Sprintf("LossReason(%d)", int(r))
}

// LostError is the Err of every *PageError that Partition.Pages yields: the
// page at PageError.PFN and, for runs, the Pages-1 pages that follow it in
// the iteration order were lost for Reason. Err is the cause when there is
// one (ErrCorrupt-wrapping detail, ErrTruncated, a read error).
type LostError struct {
	Reason LossReason
	Pages  uint64
	Err    error
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("diskdump: %d page(s) lost: %s", e.Pages, e.Reason)
	if e.Err != nil {
		s += ": " + trimPkg(e.Err.Error())
	}
	return s
}

// Unwrap returns the cause.
func (e *LostError) Unwrap() error { return e.Err }
