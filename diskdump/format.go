package diskdump

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// readAtFull reads len(b) bytes at off; a short read is ErrTruncated.
func readAtFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("diskdump: reading %d bytes at offset %#x: got %d: %w", len(b), off, n, ErrTruncated)
	}
	return fmt.Errorf("diskdump: reading %d bytes at offset %#x: %w", len(b), off, err)
}

// CheckStatus is the result of checking a partition, numbered like the exit
// codes of diskdumpfmt -c (doc/FORMAT.md §11.1).
type CheckStatus int

// Check results.
const (
	CheckReady        CheckStatus = 0 // formatted, no dump: nothing to do
	CheckHoldsDump    CheckStatus = 1 // block 1 holds a dump header
	CheckNeedsInitial CheckStatus = 2 // block 0 carries no signature: format with -f
	CheckNeedsFormat  CheckStatus = 3 // block 0 valid, some sampled block is not
	CheckUnsuitable   CheckStatus = 4 // not usable: unreadable or too small
	CheckSwap         CheckStatus = 5 // a swap partition the kernel can dump to
	CheckSwapDump     CheckStatus = 6 // a swap partition holding a dump
	CheckMounted      CheckStatus = 7 // mounted or in use (decided by the caller)
)

var checkStatusNames = [...]string{
	CheckReady:        "ready",
	CheckHoldsDump:    "holds a dump",
	CheckNeedsInitial: "needs initial format",
	CheckNeedsFormat:  "needs format",
	CheckUnsuitable:   "not suitable",
	CheckSwap:         "swap partition",
	CheckSwapDump:     "swap partition holding a dump",
	CheckMounted:      "mounted or in use",
}

// String says the status in words, as dumpformat -c prints it.
func (s CheckStatus) String() string {
	if s >= 0 && int(s) < len(checkStatusNames) {
		return checkStatusNames[s]
	}
	return fmt.Sprintf("CheckStatus(%d)", int(s))
}

// CheckResult is what CheckPartition found.
type CheckResult struct {
	Status CheckStatus
	Reason string // one line saying why, for messages

	BlockSize       int
	DeviceBlocks    uint64 // device size in blocks (truncated, like the kernel)
	PartitionBlocks uint64 // blocks the kernel samples: min(total_blocks, device)
	TotalBlocks     uint64 // total_blocks of the parameters, 0 if unknown
	MinBlocks       uint64 // smallest usable device: header_blocks + 2*ram_bitmap_blocks

	Swap        bool   // block 0 is a swap header (doc/FORMAT.md §3.4 tests 1-3)
	Block0Valid bool   // block 0 carries the signature of block 0
	Sampled     uint64 // blocks whose signature was checked (block 2 excluded)
	Bad         uint64 // of those, blocks with a bad signature
	FirstBad    int64  // first bad sampled block, -1 if none
	// Sizes are the partition sizes checked (FormatParams.Sizes), Tails
	// their tail chunks with the bad blocks of each.
	Sizes []SampleSize
	Tails []Tail

	// Header is block 1's dump header when it holds a dump and decodes;
	// HeaderErr says why a "DISKDUMP" block 1 did not decode.
	Header    *Header
	HeaderErr error
}

// minBlocksFor is the smallest device that can take a dump when the module
// says a full dump needs total blocks: header blocks plus two RAM bitmaps
// (doc/FORMAT.md §11.1, status 4). total = 3 + R + RAM with RAM <= 8*B*R, so R is at
// least (total-3)/(8*B+1); with total unknown, R is at least 1.
func minBlocksFor(total uint64, blockSize int) uint64 {
	const headerBlocks = 3
	r := uint64(1)
	if total > headerBlocks {
		per := 8*uint64(blockSize) + 1
		r = max(1, (total-headerBlocks+per-1)/per)
	}
	return headerBlocks + 2*r
}

// CheckPartition decides the diskdumpfmt -c status of a partition of size
// bytes (doc/FORMAT.md §11.1), everything except "mounted", which needs the host and
// is the caller's: swap (5, or 6 with a dump), holds a dump (1), block 0
// without signature (2), a kernel-sampled block without signature (3),
// too small (4), else ready (0). Read errors are returned as errors.
func CheckPartition(r io.ReaderAt, size int64, fp FormatParams) (*CheckResult, error) {
	if err := fp.validate(); err != nil {
		return nil, err
	}
	bs := fp.BlockSize
	res := &CheckResult{BlockSize: bs, FirstBad: -1, TotalBlocks: fp.TotalBlocks}
	if size > 0 {
		res.DeviceBlocks = uint64(size) / uint64(bs)
	}
	res.PartitionBlocks = fp.partitionBlocks(res.DeviceBlocks)
	res.MinBlocks = minBlocksFor(fp.TotalBlocks, bs)
	if res.DeviceBlocks < minFormatBlocks {
		res.Status = CheckUnsuitable
		res.Reason = fmt.Sprintf("%d bytes cannot hold blocks 0-2 of %d bytes", size, bs)
		return res, nil
	}
	head := make([]byte, 2*bs)
	if err := readAtFull(r, head, 0); err != nil {
		return nil, err
	}
	b0, b1 := head[:bs], head[bs:]
	res.Swap = IsSwapHeader(b0, bs, fp.Order, res.DeviceBlocks)
	res.Block0Valid = CheckSignature(b0, 0, fp.Order)
	holdsDump := bytes.HasPrefix(b1, []byte(DumpSignature))
	if holdsDump {
		res.Header, res.HeaderErr = ParseHeader(b1, HeaderCheck{DeviceBlocks: res.DeviceBlocks, BaseOff: int64(bs), BaseBlk: 1})
	} else if h, err := otherBlockSizeDump(r, size, bs); err != nil {
		return nil, err
	} else if h != nil {
		holdsDump, res.Header = true, h
	}
	switch {
	case res.Swap && holdsDump:
		res.Status, res.Reason = CheckSwapDump, "block 0 is a swap header and block 1 holds a dump header"
		return res, nil
	case res.Swap:
		res.Status, res.Reason = CheckSwap, "block 0 is a swap header the kernel accepts"
		return res, nil
	case holdsDump:
		res.Status, res.Reason = CheckHoldsDump, "block 1 holds a dump header"
		return res, nil
	case !res.Block0Valid:
		res.Status, res.Reason = CheckNeedsInitial, "block 0 carries no diskdump signature"
		return res, nil
	}
	if err := checkSampled(r, res, fp); err != nil {
		return nil, err
	}
	if res.Bad > 0 {
		res.Status = CheckNeedsFormat
		res.Reason = fmt.Sprintf("%d of %d sampled blocks carry no valid signature, the first is block %d", res.Bad, res.Sampled, res.FirstBad)
		return res, nil
	}
	if res.DeviceBlocks < res.MinBlocks {
		res.Status = CheckUnsuitable
		res.Reason = fmt.Sprintf("%d blocks are fewer than the %d that headers and bitmaps need", res.DeviceBlocks, res.MinBlocks)
		return res, nil
	}
	res.Status, res.Reason = CheckReady, fmt.Sprintf("block 0 and all %d sampled blocks carry valid signatures", res.Sampled)
	return res, nil
}

// dumpBlockSizes are the page sizes of kernels that may have written a dump.
var dumpBlockSizes = []int{4096, 8192, 16384, 65536}

// otherBlockSizeDump looks for a dump written with a block size other than
// the one being checked (an ia64 dump checked with x86_64 parameters): a
// dump header in block 1 of that size that decodes and names that block
// size. A dump is a dump whatever the parameters of the check.
func otherBlockSizeDump(r io.ReaderAt, size int64, bs int) (*Header, error) {
	for _, alt := range dumpBlockSizes {
		if alt == bs || size < 3*int64(alt) {
			continue
		}
		b := make([]byte, alt)
		if err := readAtFull(r, b, int64(alt)); err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(b, []byte(DumpSignature)) {
			continue
		}
		h, err := ParseHeader(b, HeaderCheck{DeviceBlocks: uint64(size) / uint64(alt), BaseOff: int64(alt), BaseBlk: 1})
		if err == nil && int(h.BlockSize) == alt {
			return h, nil
		}
	}
	return nil, nil
}

// checkSampled checks the signature of every block the kernel may sample
// at the next panic, whatever partition_size of FormatParams.Sizes it
// uses, except block 2, which the kernel accepts unconditionally
// (doc/FORMAT.md §3.1, §3.2).
func checkSampled(r io.ReaderAt, res *CheckResult, fp FormatParams) error {
	bs := uint64(fp.BlockSize)
	per := uint64(formatIOBytes) / bs
	var buf []byte
	res.Sizes = fp.Sizes(res.DeviceBlocks)
	res.Tails = fp.tails(res.DeviceBlocks)
	for c := range fp.checkedChunks(res.DeviceBlocks) {
		for blk, end := c.Blk, c.Blk+c.N; blk < end; {
			n := min(end-blk, per)
			if need := int(n * bs); cap(buf) < need {
				buf = make([]byte, need)
			}
			b := buf[:n*bs]
			if err := readAtFull(r, b, int64(blk*bs)); err != nil {
				return err
			}
			for i := range n {
				if blk+i == 2 {
					continue
				}
				res.Sampled++
				if !CheckSignature(b[i*bs:(i+1)*bs], blk+i, fp.Order) {
					res.Bad++
					if res.FirstBad < 0 {
						res.FirstBad = int64(blk + i)
					}
					for t := range res.Tails {
						if c := res.Tails[t].Chunk; blk+i >= c.Blk && blk+i < c.Blk+c.N {
							res.Tails[t].Bad++
						}
					}
				}
			}
			blk += n
		}
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
