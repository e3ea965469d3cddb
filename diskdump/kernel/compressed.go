package kernel

import "github.com/dumpkit/dumpkit/diskdump"

// compressedStore writes dumpable pages as the compressed record stream
// (doc/FORMAT.md §6.3): a record header and the zlib stream, or the raw
// page when deflate does not make it smaller than a block. Records are
// gathered in a buffer of 2^max(block_order, 2) blocks, written all but
// two blocks at a time; the tail is padded with 'm' to a whole block.
type compressedStore struct {
	d      *dumpWriter
	buf    []byte
	fill   uint64 // bytes of buf in use
	unit   uint64 // bytes written at a time
	base   uint64 // data-area byte offset of buf[0]
	blocks uint64 // blocks written
	room   uint64 // blocks of the data area
	blk    uint64 // block where buf[0] goes
}

func newCompressedStore(d *dumpWriter) *compressedStore {
	bs := uint64(d.bs)
	pages := uint64(1) << max(d.cfg.BlockOrder, 2)
	return &compressedStore{d: d, buf: make([]byte, pages*bs), unit: (pages - 2) * bs,
		room: d.devBlocks - d.g.FirstDataBlock(), blk: d.first}
}

// full keeps two blocks of slack: a record is at most a header and a
// block.
func (s *compressedStore) full() bool {
	return s.blocks+s.fill/uint64(s.d.bs)+2 >= s.room
}

func (s *compressedStore) add(j *job) error {
	d := s.d
	flags := uint32(0)
	if j.at.Anon {
		flags |= diskdump.PageMappingAnon
	}
	data := j.page
	if len(j.z) < d.bs {
		data = j.z
		flags |= diskdump.PageCompressed
		d.res.PagesCompressed++
	}
	rec := s.buf[s.fill:]
	diskdump.PutRecordHeader(rec, d.order, j.at.Flags, uint32(len(data)), flags)
	copy(rec[diskdump.PageRecordSize:], data)
	start := s.base + s.fill
	s.fill += diskdump.PageRecordSize + uint64(len(data))
	d.pending = append(d.pending, pendingPage{pfn: j.pfn, off: int64(start), end: int64(s.base + s.fill)})
	if s.fill < s.unit {
		return nil
	}
	n := s.unit / uint64(d.bs)
	if err := d.writeData(s.blk, s.buf[:s.unit]); err != nil {
		return err
	}
	s.blk += n
	s.blocks += n
	d.hdr.WrittenBlocks += uint32(n)
	copy(s.buf, s.buf[s.unit:s.fill])
	s.fill -= s.unit
	s.base += s.unit
	return d.dataWritten()
}

func (s *compressedStore) finish() error {
	if s.fill == 0 {
		return nil
	}
	bs := uint64(s.d.bs)
	n := (s.fill + bs - 1) / bs
	for i := s.fill; i < n*bs; i++ {
		s.buf[i] = 'm'
	}
	if err := s.d.writeData(s.blk, s.buf[:n*bs]); err != nil {
		return err
	}
	s.d.hdr.WrittenBlocks += uint32(n)
	s.blocks += n
	return nil
}
