package diskdump

import (
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"sync"
)

// FormatParams describe how a partition is (or will be) formatted and how the
// kernel will check it (doc/FORMAT.md §3.1, §3.2, §7.1).
type FormatParams struct {
	BlockSize  int              // block size = page size of the machine that will dump
	Order      binary.ByteOrder // byte order of the signature words
	BlockOrder uint             // module parameter block_order: sampled chunks are 1<<BlockOrder blocks
	SampleRate int              // module parameter sample_rate: one chunk every chunk<<SampleRate blocks; < 0 no check
	// TotalBlocks is the module's total_blocks (blocks a full dump needs);
	// the kernel samples min(TotalBlocks, device) blocks. 0 means unknown:
	// the whole device.
	TotalBlocks uint64
	// TotalFrom says where TotalBlocks came from, for messages
	// (SizeFromModule when empty).
	TotalFrom string
	// Also are further total_blocks values the next panic may sample
	// with (the last saved dump's, from block 2: doc/FORMAT.md §3.3). A normal
	// format writes, and a check checks, the samplings of every one of
	// them besides those of TotalBlocks and of the whole device.
	Also []SampleSize
}

// Format I/O sizes: writes and reads go in pieces of at most formatIOBytes,
// so a format needs a few MiB of memory whatever the device size.
const formatIOBytes = 4 << 20

// minFormatBlocks is the smallest device the formatter accepts: block 0,
// the header block and block 2.
const minFormatBlocks = 3

func (fp FormatParams) validate() error {
	if !ValidBlockSize(int64(fp.BlockSize)) {
		return fmt.Errorf("diskdump: format: block size %d is not a power of two from 4096 to 65536: %w", fp.BlockSize, ErrUnsupportedVersion)
	}
	if fp.Order == nil {
		return fmt.Errorf("diskdump: format: no byte order: %w", ErrUnsupportedVersion)
	}
	if fp.BlockOrder > 30 {
		return fmt.Errorf("diskdump: format: block_order %d out of range 0..30: %w", fp.BlockOrder, ErrCorrupt)
	}
	if fp.SampleRate > 62-int(fp.BlockOrder) {
		return fmt.Errorf("diskdump: format: sample_rate %d too large for block_order %d: %w", fp.SampleRate, fp.BlockOrder, ErrCorrupt)
	}
	return nil
}

// partitionBlocks is what the kernel calls partition_size when it samples:
// total_blocks clamped to the device (RHEL4 non-strict mode, doc/FORMAT.md §3.2), or
// the device when total_blocks is unknown.
func (fp FormatParams) partitionBlocks(deviceBlocks uint64) uint64 {
	if fp.TotalBlocks == 0 {
		return deviceBlocks
	}
	return min(fp.TotalBlocks, deviceBlocks)
}

// FormatInitial writes the signature of its own block number into every
// block of the device, block 0 included: diskdumpfmt -f (doc/FORMAT.md §11.1). It
// does not look at what the device holds; refusing filesystems or dumps is
// the caller's job. progress, if not nil, is called with blocks done and
// the total after each write.
func FormatInitial(w io.WriterAt, deviceBlocks uint64, fp FormatParams, progress func(done, total uint64)) error {
	if err := fp.validate(); err != nil {
		return err
	}
	if deviceBlocks < minFormatBlocks {
		return fmt.Errorf("diskdump: format: device of %d blocks cannot hold blocks 0-2: %w", deviceBlocks, ErrTooSmall)
	}
	// Block 0 is what CheckPartition takes for "initially formatted". It is
	// cleared first and written last, after a flush, so that a format
	// interrupted anywhere (killed, power cut, write error) leaves a device
	// that checks as needing an initial format, never as ready: with a
	// small total_blocks the kernel samples only the first blocks, which
	// are done long before the rest of the device.
	b0 := make([]byte, fp.BlockSize)
	if err := writeFull(w, b0, 0); err != nil {
		return err
	}
	var p func(done, total uint64)
	if progress != nil {
		p = func(done, _ uint64) { progress(done, deviceBlocks) }
	}
	if err := writeSignatures(w, 1, deviceBlocks, fp, p); err != nil {
		return err
	}
	if err := flushWriter(w); err != nil {
		return err
	}
	FillSignature(b0, 0, fp.Order)
	if err := writeFull(w, b0, 0); err != nil {
		return err
	}
	if progress != nil {
		progress(deviceBlocks, deviceBlocks)
	}
	return nil
}

// flushWriter flushes w to stable storage when it can be (a
// blockdev.Device has Flush, an *os.File Sync), so that writes issued
// after it cannot reach the medium before those issued before it.
func flushWriter(w io.WriterAt) error {
	var err error
	switch f := w.(type) {
	case interface{ Flush() error }:
		err = f.Flush()
	case interface{ Sync() error }:
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("diskdump: format: flush: %w", err)
	}
	return nil
}

// FormatNormal is diskdumpfmt without -f (doc/FORMAT.md §11.1): block 0 must already
// carry a valid signature (else a *FormatError wrapping ErrBadSignature:
// the device needs an initial format); then the blocks of
// NormalFormatBlocks are rewritten, or with all every block but block 0.
// It does not refuse a device holding a dump; callers check block 1 first.
func FormatNormal(w io.WriterAt, r io.ReaderAt, deviceBlocks uint64, fp FormatParams, all bool, progress func(done, total uint64)) error {
	if err := fp.validate(); err != nil {
		return err
	}
	if deviceBlocks < minFormatBlocks {
		return fmt.Errorf("diskdump: format: device of %d blocks cannot hold blocks 0-2: %w", deviceBlocks, ErrTooSmall)
	}
	b0 := make([]byte, fp.BlockSize)
	if err := readAtFull(r, b0, 0); err != nil {
		return err
	}
	if !CheckSignature(b0, 0, fp.Order) {
		return &FormatError{Off: 0, Blk: 0, Field: "signature", Msg: "block 0 carries no diskdump signature (needs initial format)", Err: ErrBadSignature}
	}
	if all {
		return writeSignatures(w, 1, deviceBlocks, fp, progress)
	}
	var total uint64
	for c := range NormalFormatBlocks(deviceBlocks, fp) {
		total += c.N
	}
	var done uint64
	buf := make([]byte, min(formatIOBytes, int(total)*fp.BlockSize))
	for c := range NormalFormatBlocks(deviceBlocks, fp) {
		// Chunks are 1<<block_order blocks, possibly more than one buffer.
		for blk, end := c.Blk, c.Blk+c.N; blk < end; {
			n := min(end-blk, uint64(len(buf)/fp.BlockSize))
			b := buf[:n*uint64(fp.BlockSize)]
			fillBlocks(b, blk, fp)
			if err := writeFull(w, b, int64(blk)*int64(fp.BlockSize)); err != nil {
				return err
			}
			blk += n
			done += n
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return nil
}

// NormalFormatBlocks yields, in ascending order and without overlaps, the
// chunks a normal format writes on a device of deviceBlocks blocks: blocks
// 1 and 2, the kernel's sampling grid over the whole device, and the tail
// chunks of the samplings of the device, of min(TotalBlocks, device) and of
// min(v, device) for every value of Also ([REC] doc/FORMAT.md §11.1, §13
// item 6), never block 0 and nothing past the device. Adjacent and
// overlapping chunks are merged.
func NormalFormatBlocks(deviceBlocks uint64, fp FormatParams) iter.Seq[Chunk] {
	extras := []Chunk{{Blk: 1, N: 2}}
	for _, t := range fp.tails(deviceBlocks) {
		extras = append(extras, t.Chunk)
	}
	return unionChunks(SampledChunks(deviceBlocks, fp.BlockOrder, fp.SampleRate), extras, 1, deviceBlocks)
}

// tailChunk returns the tail chunk of the kernel's sampling of a partition
// of p blocks, if it has one: the last chunk SampledChunks yields when it
// is not on the grid.
func tailChunk(p uint64, fp FormatParams) (Chunk, bool) {
	if fp.SampleRate < 0 {
		return Chunk{}, false
	}
	skip := uint64(1) << (fp.BlockOrder + uint(fp.SampleRate))
	var last Chunk
	have := false
	for c := range SampledChunks(p, fp.BlockOrder, fp.SampleRate) {
		last, have = c, true
	}
	return last, have && last.Blk%skip != 0
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// formatWrites is the number of writes a format keeps in flight. Two keep
// the device busy while one write completes and the next is issued, which
// matters with direct I/O, where each write waits for the device.
const formatWrites = 2

// writeSignatures writes the signatures of blocks [start, end) in buffers
// of formatIOBytes. One goroutine fills buffers while formatWrites others
// write them (w must accept concurrent WriteAt calls on disjoint ranges, as
// io.WriterAt allows), so the pattern computation overlaps the I/O. It
// stops at the first write error; progress counts completed blocks.
func writeSignatures(w io.WriterAt, start, end uint64, fp FormatParams, progress func(done, total uint64)) error {
	if start >= end {
		return nil
	}
	bs := uint64(fp.BlockSize)
	per := uint64(formatIOBytes) / bs
	nbuf := min(per, end-start) * bs
	type piece struct {
		blk uint64
		buf []byte
	}
	free := make(chan []byte, formatWrites+1)
	full := make(chan piece, formatWrites)
	stop := make(chan struct{})
	for range formatWrites + 1 {
		free <- make([]byte, nbuf)
	}
	go func() {
		defer close(full)
		for blk := start; blk < end; {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n := min(per, end-blk)
			buf = buf[:n*bs]
			fillBlocks(buf, blk, fp)
			select {
			case full <- piece{blk, buf}:
			case <-stop:
				return
			}
			blk += n
		}
	}()
	var (
		mu       sync.Mutex
		done     uint64
		firstErr error
		wg       sync.WaitGroup
	)
	total := end - start
	for range formatWrites {
		wg.Go(func() {
			for p := range full {
				err := writeFull(w, p.buf, int64(p.blk*bs))
				mu.Lock()
				switch {
				case firstErr != nil:
				case err != nil:
					firstErr = err
					close(stop)
				default:
					done += uint64(len(p.buf)) / bs
					if progress != nil {
						progress(done, total)
					}
				}
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
				free <- p.buf[:cap(p.buf)]
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		return nil
	}
	// Drain so the filler, blocked on full, sees stop and exits.
	for range full {
	}
	return firstErr
}

// fillBlocks fills buf (a whole number of blocks) with the signatures of
// consecutive blocks starting at blk.
func fillBlocks(buf []byte, blk uint64, fp FormatParams) {
	bs := fp.BlockSize
	for off := 0; off+bs <= len(buf); off += bs {
		FillSignature(buf[off:off+bs], blk, fp.Order)
		blk++
	}
}

func writeFull(w io.WriterAt, b []byte, off int64) error {
	n, err := w.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("diskdump: writing %d bytes at offset %#x: %w", len(b), off, err)
	}
	return nil
}

// readAtFull is ReadFull with the offset in the message and a short read
// reported as ErrTruncated.
func readAtFull(r io.ReaderAt, b []byte, off int64) error {
	if err := ReadFull(r, b, off); err != nil {
		return fmt.Errorf("diskdump: reading %d bytes at offset %#x: %w", len(b), off, readSentinel(err))
	}
	return nil
}

// InvalidateDump removes a dump from a partition the way savecore -D / -X
// does: block 1 gets its format signature back, or zeros on a swap
// partition, where the swap header in block 0 must stay valid (doc/FORMAT.md §13
// item 12).
func InvalidateDump(w io.WriterAt, blockSize int, order binary.ByteOrder, swap bool) error {
	if !ValidBlockSize(int64(blockSize)) {
		return fmt.Errorf("diskdump: invalidate: block size %d is not a power of two from 4096 to 65536: %w", blockSize, ErrUnsupportedVersion)
	}
	b := make([]byte, blockSize)
	if !swap {
		if order == nil {
			return fmt.Errorf("diskdump: invalidate: no byte order: %w", ErrUnsupportedVersion)
		}
		FillSignature(b, 1, order)
	}
	return writeFull(w, b, int64(blockSize))
}
