package kernel

import (
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Outcome is how a WriteDump run ended.
type Outcome int

// Outcomes of WriteDump.
const (
	// OutcomeCompleted: the final header says COMPLETED.
	OutcomeCompleted Outcome = iota
	// OutcomeShortArea: the partition filled up; final header SHORT_AREA.
	OutcomeShortArea
	// OutcomeIncomplete: strict mode on a device smaller than total_blocks;
	// final header INCOMPLETED.
	OutcomeIncomplete
	// OutcomePowerCut: StopAfterBlocks was reached.
	OutcomePowerCut
	// OutcomeRefused: the kernel rejected the partition before writing.
	OutcomeRefused
	// OutcomeFailed: the kernel abandoned the partition after writing
	// began (write error, no room for a single page).
	OutcomeFailed
)

var outcomeNames = [...]string{"completed", "short area", "incomplete", "power cut", "refused", "failed"}

// String names the outcome, e.g. "short area".
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result tells what WriteDump did to the partition.
type Result struct {
	Outcome  Outcome
	Geometry diskdump.Geometry // layout at dump time (BitmapBlocks doubled in non-strict mode)
	// TotalBlocks is the module's total_blocks (never counts bitmap 2).
	TotalBlocks uint64
	// Header is the last header that reached the partition (nil if none);
	// Status and WrittenBlocks are its fields.
	Header        *diskdump.Header
	Status        diskdump.Status
	WrittenBlocks uint64
	// BlocksWritten counts every block written (the power-cut clock);
	// Writes the write calls.
	BlocksWritten int64
	Writes        int64
	// DataBlocks is the number of data-area blocks written.
	DataBlocks uint64
	// PagesSaved: pages whose data reached the partition (= Saved.Count()).
	// PagesSkipped: pages excluded by dump_level. PagesDisregarded: RAM
	// pages not reached because the partition was full.
	PagesSaved       uint64
	PagesSkipped     uint64
	PagesDisregarded uint64
	// PagesCompressed counts records stored zlib-compressed.
	PagesCompressed uint64
	// Saved is the PFN-indexed set of pages whose data is wholly on the
	// partition.
	Saved *diskdump.Bitmap
	// Recoverable is the subset of Saved that is on the disk and
	// locatable, whatever the on-disk header says (doc/FORMAT.md §9.5):
	// in two-bitmap mode the pages whose dense bit was flushed; in strict
	// mode every saved page (unwritten blocks keep their format
	// signature). The header's written_blocks is a hint, not a limit.
	Recoverable *diskdump.Bitmap
	// Console holds the kernel's console lines.
	Console []string
}
