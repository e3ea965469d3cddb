package dmesg

import "fmt"

// Bounds on the lockless ring that a corrupt dump cannot exceed. Kernels
// size the text ring from 4 KiB to a few MiB, with one descriptor per 32
// bytes of text (doc/DMESG.md §3).
const (
	maxCountBits = 20
	maxSizeBits  = 26
)

// prbLayout holds the VMCOREINFO sizes and offsets of the lockless ring
// (doc/DMESG.md §3), with the nested offsets already added up.
type prbLayout struct {
	word                                int // unsigned long of the dumped machine
	rbSize, descSize, infoSize          int
	countBits, descs, infos, head, tail int // in printk_ringbuffer
	sizeBits, data                      int // in printk_ringbuffer
	stateVar, begin, next               int // in prb_desc
	ts, textLen                         int // in printk_info
}

func lockLessLayout(info *VMCOREINFO, word int) (prbLayout, keys) {
	k := keys{info: info}
	dr := k.offset(-1, "printk_ringbuffer.desc_ring")
	tr := k.offset(-1, "printk_ringbuffer.text_data_ring")
	ctr := k.offset(-1, "atomic_long_t.counter")
	blk := k.offset(-1, "prb_desc.text_blk_lpos")
	p := prbLayout{
		word:      word,
		rbSize:    k.size(-1, "printk_ringbuffer"),
		descSize:  k.size(-1, "prb_desc"),
		infoSize:  k.size(-1, "printk_info"),
		countBits: dr + k.offset(-1, "prb_desc_ring.count_bits"),
		descs:     dr + k.offset(-1, "prb_desc_ring.descs"),
		infos:     dr + k.offset(-1, "prb_desc_ring.infos"),
		head:      dr + k.offset(-1, "prb_desc_ring.head_id") + ctr,
		tail:      dr + k.offset(-1, "prb_desc_ring.tail_id") + ctr,
		sizeBits:  tr + k.offset(-1, "prb_data_ring.size_bits"),
		data:      tr + k.offset(-1, "prb_data_ring.data"),
		stateVar:  k.offset(-1, "prb_desc.state_var") + ctr,
		begin:     blk + k.offset(-1, "prb_data_blk_lpos.begin"),
		next:      blk + k.offset(-1, "prb_data_blk_lpos.next"),
		ts:        k.offset(-1, "printk_info.ts_nsec"),
		textLen:   k.offset(-1, "printk_info.text_len"),
	}
	return p, k
}

// check verifies that every field lies inside its structure.
func (p prbLayout) check() error {
	w := p.word
	for _, f := range []struct {
		name         string
		off, n, size int
	}{
		{"prb_desc_ring.count_bits", p.countBits, 4, p.rbSize},
		{"prb_desc_ring.descs", p.descs, w, p.rbSize},
		{"prb_desc_ring.infos", p.infos, w, p.rbSize},
		{"prb_desc_ring.head_id", p.head, w, p.rbSize},
		{"prb_desc_ring.tail_id", p.tail, w, p.rbSize},
		{"prb_data_ring.size_bits", p.sizeBits, 4, p.rbSize},
		{"prb_data_ring.data", p.data, w, p.rbSize},
		{"prb_desc.state_var", p.stateVar, w, p.descSize},
		{"prb_data_blk_lpos.begin", p.begin, w, p.descSize},
		{"prb_data_blk_lpos.next", p.next, w, p.descSize},
		{"printk_info.ts_nsec", p.ts, 8, p.infoSize},
		{"printk_info.text_len", p.textLen, 2, p.infoSize},
	} {
		if !fits(f.off, f.n, f.size) || f.size == 0 {
			return &CorruptError{Layout: Lockless, Field: "OFFSET(" + f.name + ")", Value: uint64(f.off),
				Msg: fmt.Sprintf("field of %d bytes does not fit in its structure of %d", f.n, f.size)}
		}
	}
	return nil
}

// readLockless reads the lockless ring: the ring structure at the pointer
// prb, its descriptors, infos and text (doc/DMESG.md §3).
func readLockless(k *kmem, info *VMCOREINFO) (*Log, error) {
	p, ks := lockLessLayout(info, k.word)
	prb := ks.symbol("prb")
	if err := ks.err(Lockless); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	rbAddr, err := k.ulong("prb", prb)
	if err != nil {
		return nil, err
	}
	rb, err := k.virt("printk_ringbuffer", rbAddr, p.rbSize)
	if err != nil {
		return nil, err
	}
	countBits := leUint(rb, p.countBits, 4)
	sizeBits := leUint(rb, p.sizeBits, 4)
	if countBits > maxCountBits || sizeBits > maxSizeBits || sizeBits < 3 {
		return nil, &CorruptError{Layout: Lockless, Field: "count_bits/size_bits",
			Value: countBits<<32 | sizeBits, Msg: "ring size out of range"}
	}
	count := 1 << countBits
	descs, err := k.virt("prb.desc_ring.descs", leUint(rb, p.descs, p.word), count*p.descSize)
	if err != nil {
		return nil, err
	}
	infos, err := k.virt("prb.desc_ring.infos", leUint(rb, p.infos, p.word), count*p.infoSize)
	if err != nil {
		return nil, err
	}
	data, err := k.virt("prb.text_data_ring.data", leUint(rb, p.data, p.word), 1<<sizeBits)
	if err != nil {
		return nil, err
	}
	tail, head := leUint(rb, p.tail, p.word), leUint(rb, p.head, p.word)
	recs, err := p.decode(descs, infos, data, tail, head)
	return &Log{Layout: Lockless, Records: recs}, err
}

// decode walks the descriptor ids from tail to head and returns the text
// of every committed or finalized record that has data (doc/DMESG.md §3).
// descs and infos hold the same number of entries, a power of two; data's
// length is a power of two. The walk visits at most that many ids.
func (p prbLayout) decode(descs, infos, data []byte, tail, head uint64) ([]Record, error) {
	count := uint64(len(descs) / p.descSize)
	size := uint64(len(data))
	if count == 0 || uint64(len(infos)/p.infoSize) != count || size == 0 {
		return nil, &CorruptError{Layout: Lockless, Field: "desc_ring", Value: count, Msg: "empty ring"}
	}
	bits := uint(8 * p.word)
	idMask := uint64(1)<<(bits-2) - 1
	var recs []Record
	id := tail
	for n := uint64(0); ; n++ {
		if n > count {
			return recs, &CorruptError{Layout: Lockless, Field: "head_id", Value: head,
				Msg: fmt.Sprintf("not reached from tail_id 0x%x within %d descriptors", tail, count)}
		}
		if r, ok := p.record(descs, infos, data, id, count, idMask, bits); ok {
			recs = append(recs, r)
		}
		if id == head {
			return recs, nil
		}
		id = (id + 1) & idMask
	}
}

// record decodes descriptor id; ok is false for a record that makedumpfile
// skips: id mismatch, not committed or finalized, or no data.
func (p prbLayout) record(descs, infos, data []byte, id, count, idMask uint64, bits uint) (Record, bool) {
	d := int(id%count) * p.descSize
	sv := leUint(descs, d+p.stateVar, p.word)
	state := sv >> (bits - 2) & 3
	if sv&idMask != id || (state != 1 && state != 2) {
		return Record{}, false
	}
	size := uint64(len(data))
	begin := leUint(descs, d+p.begin, p.word) % size
	next := leUint(descs, d+p.next, p.word) % size
	if begin == next {
		return Record{}, false
	}
	in := int(id%count) * p.infoSize
	textLen := leUint(infos, in+p.textLen, 2)
	if begin > next {
		begin = 0
	}
	begin += uint64(p.word)
	if next >= begin && next-begin < textLen {
		textLen = next - begin
	}
	// A corrupt block may claim text past the ring's end; keep what exists.
	begin = min(begin, size)
	end := min(begin+textLen, size)
	return Record{TsNsec: leUint(infos, in+p.ts, 8), Text: data[begin:end]}, true
}
