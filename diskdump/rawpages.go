package diskdump

// rawPages walks an uncompressed data area: page k is block first+k, for
// the k-th PFN of the dumped bitmap.
func (p *Partition) rawPages(yield func(*Page, error) bool) {
	bs := uint64(p.bs)
	o := p.hdr.Layout.Order
	ext := p.rawExtent() // blocks that may hold pages
	n := min(ext, p.want)
	avail := n // pages whose block lies within the device
	if p.devBlocks < p.first+n {
		avail = 0
		if p.devBlocks > p.first {
			avail = p.devBlocks - p.first
		}
	}
	readEnd := avail // pages [0, readEnd) are read; lowered by the signature rule
	buf := p.buffer(int64(avail * bs))
	bufBlocks := uint64(len(buf)) / bs
	var bufK, bufN uint64 // the buffer holds pages [bufK, bufK+bufN)
	var chunkErr error    // read error of the buffered chunk: read its blocks one by one
	var k, skipUntil uint64
	for pfn := range p.dumped.All() {
		if k < skipUntil {
			k++
			continue
		}
		off := int64(p.first+k) * int64(bs)
		beyond := p.lookPast && p.first+k >= uint64(p.hdr.WrittenBlocks)
		var data []byte
		if k < readEnd {
			if k >= bufK+bufN {
				bufK, bufN = k, min(bufBlocks, avail-k)
				chunkErr = ReadFull(p.r, buf[:bufN*bs], int64(p.first+bufK)*int64(bs))
			}
			data = buf[(k-bufK)*bs : (k-bufK+1)*bs]
			if chunkErr != nil {
				if err := ReadFull(p.r, data, off); err != nil {
					k++
					if !yield(nil, p.lostErr(pfn, off, LostIOError, 1, err)) {
						return
					}
					continue
				}
			}
			// A dump interrupted before its final header, past the
			// header's written_blocks (doc/FORMAT.md §9.4 step 8) [REC]: a
			// block that still carries its own signature was never
			// written. The kernel writes the data area in order, so nothing
			// after it belongs to this dump either: later blocks hold
			// signatures or stale data of an earlier dump.
			if beyond && IsSignatureBlock(data, p.first+k, o) {
				readEnd = k
			}
		}
		if k >= readEnd {
			r, end, cause := rawLoss(k, avail, n, p.want)
			skipUntil = end
			k++
			if !yield(nil, p.lostErr(pfn, off, r, end-(k-1), cause)) {
				return
			}
			continue
		}
		k++
		pg := &p.page
		pg.PFN, pg.Off, pg.Data = pfn, off, data
		p.stats.Found++
		if beyond {
			p.foundBeyond("blocks up to the first one still carrying its format signature")
		}
		if !yield(pg, nil) {
			return
		}
	}
	p.rawUnflushed(ext, yield)
}

// rawLoss says why page k and those after it, up to end, are lost: avail
// pages lie within the device, n within the data extent, of want.
func rawLoss(k, avail, n, want uint64) (r LossReason, end uint64, cause error) {
	switch {
	case k < avail:
		return LostNeverWritten, avail, nil
	case k < n:
		return LostTruncated, n, ErrTruncated
	default:
		return LostNotWritten, want, nil
	}
}

// rawUnflushed reports the written blocks beyond the pages the bitmaps
// account for (ext data blocks in all): pages of an interrupted dump written
// after the last bitmap-2 flush (their bits are still zero), or garbage.
// Their PFNs are unknown.
func (p *Partition) rawUnflushed(ext uint64, yield func(*Page, error) bool) {
	if ext <= p.want {
		return
	}
	bs := uint64(p.bs)
	extra := ext - p.want
	in := uint64(0)
	if p.devBlocks > p.first+p.want {
		in = min(extra, p.devBlocks-p.first-p.want)
	}
	p.stats.Expected += extra
	if in > 0 && !yield(nil, p.lostErr(NoPFN, int64(p.first+p.want)*int64(bs), LostUnflushed, in, nil)) {
		return
	}
	if extra > in {
		yield(nil, p.lostErr(NoPFN, int64(p.first+p.want+in)*int64(bs), LostTruncated, extra-in, ErrTruncated))
	}
}
