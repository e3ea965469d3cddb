package kernel

// rawStore writes dumpable pages as raw blocks (doc/FORMAT.md §6.2), a
// chunk of 1<<block_order pages per write.
type rawStore struct {
	d      *dumpWriter
	chunk  []byte
	n      uint64 // pages in chunk
	blocks uint64 // pages handed to the data area
	room   uint64 // blocks of the data area
	blk    uint64 // block where chunk goes
}

func newRawStore(d *dumpWriter) *rawStore {
	return &rawStore{d: d, chunk: make([]byte, d.bs<<d.cfg.BlockOrder),
		room: d.devBlocks - d.g.FirstDataBlock(), blk: d.first}
}

func (s *rawStore) full() bool { return s.blocks >= s.room }

func (s *rawStore) add(j *job) error {
	d, bs := s.d, uint64(s.d.bs)
	copy(s.chunk[s.n*bs:], j.page)
	d.pending = append(d.pending, pendingPage{pfn: j.pfn, off: int64(s.blocks * bs), end: int64((s.blocks + 1) * bs)})
	s.n++
	s.blocks++
	if s.n*bs < uint64(len(s.chunk)) {
		return nil
	}
	if err := s.write(); err != nil {
		return err
	}
	return d.dataWritten()
}

func (s *rawStore) finish() error { return s.write() }

// write writes the pages of the chunk and empties it.
func (s *rawStore) write() error {
	if s.n == 0 {
		return nil
	}
	d := s.d
	if err := d.writeData(s.blk, s.chunk[:s.n*uint64(d.bs)]); err != nil {
		return err
	}
	s.blk += s.n
	d.hdr.WrittenBlocks += uint32(s.n)
	s.n = 0
	return nil
}
