package diskdump

import (
	"errors"
	"fmt"
	"iter"
)

// ErrPageAbsent means a page that a PageReader was asked for is not in the
// dump: not RAM, excluded by the kernel, or beyond what was written.
var ErrPageAbsent = errors.New("diskdump: page not in the dump")

// indexStride is the number of records between two entries of the sparse
// record index of a compressed dump: one 8-byte offset per 64 pages (256
// KiB of RAM with 4 KiB pages), so the index costs 32 bytes per MiB of
// dumped RAM, and a page is found after reading at most 63 record headers.
const indexStride = 64

// rankStride is the number of PFNs per entry of the rank table that maps a
// PFN to its position among the dumped pages.
const rankStride = 4096

// windowSize is the size of the read window of a PageReader.
const windowSize = 64 << 10

// PageReader reads single pages of a dump partition by PFN, in any order,
// with bounded memory: the page's block follows from the dumped bitmap for
// an uncompressed data area (doc/FORMAT.md §6.2); for a record stream
// (doc/FORMAT.md §6.3) a sparse index of record offsets, built by one scan
// of the record headers, gives a nearby record to walk from. It implements
// dmesg.Memory. A PageReader is not safe for concurrent use; it does not
// share buffers with its Partition's Pages.
type PageReader struct {
	p    *Partition
	rank []uint64 // rank[i]: dumped pages below PFN i*rankStride

	// uncompressed data areas: page k is block first+k for k < avail.
	avail uint64

	// record streams
	index   []int64 // index[j]: offset of record j*indexStride
	nrec    uint64  // records the index covers (the stream is unusable after)
	stopAt  error   // why the scan stopped before every record, or nil
	scanned bool    // the index was built (indexed)
	curK    uint64  // record number at curPos (sequential reads walk on from it)
	curPos  int64

	win    []byte // window: bytes [winOff, winOff+len(win)) of the device
	winOff int64
	winBuf []byte

	// zeroRec is the data of a zlib record that inflated to a zero page:
	// the kernel compresses every zero page to the same bytes, so a record
	// equal to it is a zero page without inflating it (most of the pages
	// of a large machine, read one by one when its log is searched for).
	zeroRec  []byte
	zeroPage []byte
}

// maxZeroRec bounds the zlib record kept as zeroRec: a zero page
// deflates to about 20 bytes.
const maxZeroRec = 64

// PageReader returns a random-access reader of the partition's pages. For
// a compressed dump, the first ReadPage (or Err) reads every record header
// once (the data itself is skipped over) to build its index, so a reader
// that is never asked for a page costs no read; a damaged header ends the
// index there: pages after it are reported lost (the resynchronisation of
// Pages is not attempted).
func (p *Partition) PageReader() (*PageReader, error) {
	pr := &PageReader{p: p, winBuf: make([]byte, windowSize)}
	pr.buildRank()
	if !p.hdr.Status.Compressed() {
		n := min(p.rawExtent(), p.want)
		pr.avail = n
		if p.devBlocks < p.first+n {
			pr.avail = 0
			if p.devBlocks > p.first {
				pr.avail = p.devBlocks - p.first
			}
		}
	}
	return pr, nil
}

// indexed builds the record index of a compressed dump once.
func (pr *PageReader) indexed() {
	if !pr.scanned {
		pr.scanned = true
		pr.scan()
	}
}

// buildRank fills the rank table of the dumped bitmap.
func (pr *PageReader) buildRank() {
	b := pr.p.dumped.Bytes()
	n := (uint64(len(b))*8 + rankStride - 1) / rankStride
	pr.rank = make([]uint64, n+1)
	var c uint64
	for i := range n {
		pr.rank[i] = c
		lo := i * rankStride / 8
		hi := min(lo+rankStride/8, uint64(len(b)))
		c += popcount(b[lo:hi])
	}
	pr.rank[n] = c
}

// rankOf returns the number of dumped pages below pfn.
func (pr *PageReader) rankOf(pfn uint64) uint64 {
	i := pfn / rankStride
	if i >= uint64(len(pr.rank))-1 {
		return pr.rank[len(pr.rank)-1]
	}
	b := pr.p.dumped.Bytes()
	lo := i * rankStride / 8
	sub := NewBitmap(b[lo:min(lo+rankStride/8, uint64(len(b)))])
	return pr.rank[i] + sub.CountBelow(pfn-i*rankStride)
}

// PageSize returns the dump's page (block) size.
func (pr *PageReader) PageSize() int { return pr.p.bs }

// Frames yields the PFNs of the pages the dump holds, in increasing order.
func (pr *PageReader) Frames() iter.Seq[uint64] { return pr.p.dumped.All() }

// Err returns why the index of a compressed dump ends before its last
// page (a damaged record header, the end of what was written), or nil.
func (pr *PageReader) Err() error {
	if pr.p.hdr.Status.Compressed() {
		pr.indexed()
	}
	return pr.stopAt
}

// ReadPage returns page pfn decompressed, in dst when it is large enough.
// A page that is not in the dump gives a *PageError wrapping ErrPageAbsent;
// a damaged record one wrapping ErrCorrupt.
func (pr *PageReader) ReadPage(pfn uint64, dst []byte) ([]byte, error) {
	p := pr.p
	if !p.dumped.Test(pfn) {
		return nil, &PageError{PFN: pfn, Off: -1, Err: fmt.Errorf("%w: not marked dumped in the bitmaps", ErrPageAbsent)}
	}
	k := pr.rankOf(pfn)
	if cap(dst) < p.bs {
		dst = make([]byte, p.bs)
	}
	dst = dst[:p.bs]
	if !p.hdr.Status.Compressed() {
		return pr.rawPage(pfn, k, dst)
	}
	pr.indexed()
	return pr.recordPage(pfn, k, dst)
}

// rawPage reads the k-th dumped page, pfn, of an uncompressed data area.
func (pr *PageReader) rawPage(pfn, k uint64, dst []byte) ([]byte, error) {
	p := pr.p
	blk := p.first + k
	off := int64(blk) * int64(p.bs)
	if k >= pr.avail {
		return nil, &PageError{PFN: pfn, Off: off, Err: fmt.Errorf("%w: block %d was not written or is beyond the device", ErrPageAbsent, blk)}
	}
	if err := ReadFull(p.r, dst, off); err != nil {
		return nil, &PageError{PFN: pfn, Off: off, Err: err}
	}
	// An interrupted strict dump (doc/FORMAT.md §9.4 step 8): a block that
	// still carries its signature was never written.
	if p.lookPast && IsSignatureBlock(dst, blk, p.hdr.Layout.Order) {
		return nil, &PageError{PFN: pfn, Off: off, Err: fmt.Errorf("%w: block %d still holds its format signature", ErrPageAbsent, blk)}
	}
	return dst, nil
}
