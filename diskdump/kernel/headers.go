package kernel

import "github.com/dumpkit/dumpkit/diskdump"

// writeLayout writes what precedes the memory (doc/FORMAT.md §4.4, §4.5):
// the INCOMPLETED header, the sub-header, the bitmaps and the header again
// with written_blocks past them. It returns the number of pages the
// kernel means to write (max_written) and whether a strict-mode device is
// too small for all of them.
func (d *dumpWriter) writeLayout() (maxWritten uint64, strictShort bool, err error) {
	g := d.g
	d.hdr.Status = diskdump.StatusIncompleted | d.compressedBit()
	d.hdr.BitmapBlocks = uint32(g.BitmapBlocks)
	d.hdr.DeviceBlocks = uint32(d.devBlocks)
	d.hdr.WrittenBlocks = 2
	if err := d.writeHeader(); err != nil {
		return 0, false, err
	}
	if err := d.writeSubHeader(); err != nil {
		return 0, false, err
	}
	if err := d.writeBitmaps(); err != nil {
		return 0, false, err
	}
	maxWritten = g.RAMBlocks
	if d.strict && d.devBlocks < g.TotalBlocks() {
		d.console("disk_dump: dump partition is too small. actual blocks %d. expected blocks %d. whole memory will not be saved",
			d.devBlocks, g.TotalBlocks())
		maxWritten -= g.TotalBlocks() - d.devBlocks
		strictShort = true
	}
	d.dindex = g.DumpBitmapBlock()
	d.hdr.WrittenBlocks += uint32(g.SubHdrBlocks) + uint32(g.BitmapBlocks)
	return maxWritten, strictShort, d.writeHeader()
}

// writeHeader writes the header block with the current d.hdr and records
// it in the result when it landed.
func (d *dumpWriter) writeHeader() error {
	b := make([]byte, d.bs)
	if err := d.hdr.Encode(b); err != nil {
		return err
	}
	n, err := d.writeBlocks(1, b)
	if n == 1 {
		h := d.hdr
		h.Tasks = append([]uint64(nil), d.hdr.Tasks...)
		d.res.Header = &h
		d.res.Status = h.Status
		d.res.WrittenBlocks = uint64(h.WrittenBlocks)
		d.landedAtHeader = d.landed
	}
	return err
}

// writeSubHeader writes the architecture sub-header (doc/FORMAT.md §5),
// with the published kernel's bugs when Config.KernelBugs asks for them.
func (d *dumpWriter) writeSubHeader() error {
	a := d.cfg.Arch
	regs, sw := d.cfg.Regs, d.cfg.SwitchStacks
	if d.cfg.KernelBugs && (a == diskdump.ArchIA64 || a == diskdump.ArchPPC64) {
		regs = nil
		if a == diskdump.ArchPPC64 {
			sw = nil
		}
	}
	b, err := diskdump.EncodeSubHeader(a, d.bs, regs, sw)
	if err != nil {
		return err
	}
	_, err = d.writeBlocks(2, b)
	return err
}

// writeBitmaps writes bitmap 1 one block at a time and, in non-strict
// mode, zeroes the blocks of bitmap 2.
func (d *dumpWriter) writeBitmaps() error {
	b := make([]byte, d.bs)
	bitsPerBlock := uint64(d.bs) * 8
	for nr := uint64(0); nr < d.g.RAMBitmapBlocks; nr++ {
		clear(b)
		base := nr * bitsPerBlock
		for i := uint64(0); i < bitsPerBlock && base+i < d.maxPFN; i++ {
			if d.src.IsRAM(base + i) {
				b[i>>3] |= 1 << (i & 7)
			}
		}
		if _, err := d.writeBlocks(d.g.RAMBitmapBlock()+nr, b); err != nil {
			return err
		}
	}
	if d.strict {
		return nil
	}
	clear(b)
	for nr := uint64(0); nr < d.g.RAMBitmapBlocks; nr++ {
		if _, err := d.writeBlocks(d.g.DumpBitmapBlock()+nr, b); err != nil {
			return err
		}
	}
	return nil
}

// setBitmap appends the page's bit to the dense bitmap and flushes a full
// block (set_bitmap).
func (d *dumpWriter) setBitmap(dumpable bool) error {
	if d.strict {
		return nil
	}
	if dumpable {
		d.dmap[d.dbit>>3] |= 1 << (d.dbit & 7)
	}
	d.dbit++
	if d.dbit == d.bs*8 {
		after := d.emitted
		if dumpable {
			after++
		}
		return d.flushBitmap(after)
	}
	return nil
}

// flushBitmap writes the current block of the dense bitmap and starts the
// next; emittedAfter is the number of pages its bits account for.
func (d *dumpWriter) flushBitmap(emittedAfter uint64) error {
	n, err := d.writeBlocks(d.dindex, d.dmap)
	if n == 1 {
		d.flushedEmitted = emittedAfter
	}
	clear(d.dmap)
	d.dindex++
	d.flushed = true
	d.dbit = 0
	return err
}
