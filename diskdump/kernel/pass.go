package kernel

import "github.com/dumpkit/dumpkit/diskdump"

// store is how the pass puts dumpable pages into the data area: raw
// blocks (rawStore) or the compressed record stream (compressedStore).
type store interface {
	// full reports whether the data area has no room for another page.
	full() bool
	// add hands one dumpable page to the data area, writing it out when a
	// chunk is complete.
	add(j *job) error
	// finish writes what is left of the last chunk.
	finish() error
}

// writeMemory is write_memory (doc/FORMAT.md §6.1): the pass over RAM. It
// reports whether it stopped because the partition was full.
func (d *dumpWriter) writeMemory(maxWritten uint64) (short bool, err error) {
	if d.cfg.DumpLevel != 0 {
		d.console("dumping memory(partial dump with dump_level %d)..", d.cfg.DumpLevel)
	} else {
		d.console("dumping memory..")
	}
	d.hdr.Status = diskdump.StatusInProgress | d.compressedBit()
	if !d.strict {
		d.dmap = make([]byte, d.bs)
	}
	var st store
	var cs *compressedStore
	if d.cfg.Compress {
		cs = newCompressedStore(d)
		st = cs
	} else {
		st = newRawStore(d)
	}
	short, err = d.pass(st, newPreparer(d))
	if err != nil {
		return short, err
	}
	if err := st.finish(); err != nil {
		return short, err
	}
	if d.cfg.DumpLevel != 0 {
		d.console("%d(%d saved %d skipped)/%d", d.emitted+d.skipped, d.emitted, d.skipped, maxWritten)
	} else {
		d.console("%d/%d", d.emitted, maxWritten)
	}
	if cs != nil {
		d.console("%d compressed into %d", d.emitted, cs.blocks)
	}
	if !d.strict && d.dbit > 0 {
		if err := d.flushBitmap(d.emitted); err != nil {
			return short, err
		}
	}
	return short, nil
}

// pass walks the RAM pages in PFN order: the dense bitmap bit of each,
// then the page itself into st when it is dumpable. Before each page it
// checks for room; when there is none and RAM pages remain, it stops
// short.
func (d *dumpWriter) pass(st store, prep *preparer) (short bool, err error) {
	processed := false
	for {
		if st.full() {
			if prep.nextPage() == nil {
				break
			}
			d.res.PagesDisregarded = d.g.RAMBlocks - (d.emitted + d.skipped)
			d.console("disk_dump: dump device is too small. %d pages will be disregarded", d.res.PagesDisregarded)
			short = true
			break
		}
		j := prep.nextPage()
		if j == nil {
			break
		}
		if j.err != nil {
			return short, j.err
		}
		if err := d.setBitmap(j.ok); err != nil {
			return short, err
		}
		processed = true
		if !j.ok {
			d.skipped++
			continue
		}
		if j.at.BadPage {
			if d.badLines < maxConsoleBadPages {
				d.console("disk_dump: Bad page. PFN %d flags %x", j.pfn, d.badFlags(j.at))
			}
			d.badLines++
		}
		if err := st.add(j); err != nil {
			return short, err
		}
		d.emitted++
	}
	if !processed {
		return short, errNoRoom
	}
	return short, nil
}

// dataWritten is called after a chunk of the data area reached the
// partition during the pass: the header is rewritten when a bitmap block
// was flushed since the previous chunk, so that written_blocks covers the
// pages the flushed bits describe.
func (d *dumpWriter) dataWritten() error {
	if !d.flushed {
		return nil
	}
	d.flushed = false
	return d.writeHeader()
}
