package vmcore

import (
	"github.com/dumpkit/dumpkit/diskdump"
)

// Estimate is a vmcore size estimate and what it is based on.
type Estimate struct {
	Bytes int64
	// Basis says what the data part counts, for messages: "pages" (every
	// dumpable page stored whole) or "records" (the compressed records
	// written on the partition, copied as they are).
	Basis string
	Pages uint64 // dumpable pages
	// RecordBytes is the compressed stream on the partition, from block
	// header_blocks + bitmap_blocks up to written_blocks (Basis "records").
	RecordBytes int64
}

// EstimateWithBasis is EstimateSize for the dump's actual content: a
// compressed dump saved as DISKDUMP or KDUMP copies its zlib records
// without inflating them, so the data part is bounded by the records the
// kernel wrote (doc/FORMAT.md §6: from the first data block up to
// written_blocks, both known from the dump header), not by the page
// count, unless pages are to be stored uncompressed (a page-flag mask)
// or compressed anew (a KDUMP compression other than zlib), the header's
// written_blocks is unusable, or the dump is not final: an interrupted
// dump is read past written_blocks (diskdump.Stats.BeyondWritten).
func EstimateWithBasis(p *diskdump.Partition, opt Options) Estimate {
	f := resolveFormat(p, opt.Format)
	s := partitionSource(p)
	e := Estimate{Bytes: estimateSize(s, f), Basis: "pages", Pages: s.dumpable.Count()}
	h, g := p.Header(), p.Geometry()
	final := h.Status.State() == diskdump.StatusCompleted || h.Status.State() == diskdump.StatusShortArea
	if f == FormatELF || !h.Status.Compressed() || opt.UncompressedMask != 0 || !final ||
		(f == FormatKdump && opt.Compression != CompressZlib) {
		return e
	}
	first, written := g.FirstDataBlock(), uint64(h.WrittenBlocks)
	if written <= first || written > uint64(h.DeviceBlocks) {
		return e
	}
	b := int64(p.BlockSize())
	records := int64(written-first) * b
	full := int64(e.Pages) * b
	if records >= full {
		return e
	}
	e.Bytes += records - full
	e.Basis, e.RecordBytes = "records", records
	return e
}
