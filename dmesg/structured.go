package dmesg

import "fmt"

// recLayout is the header of a structured record (struct printk_log,
// called struct log before 3.11), from VMCOREINFO (doc/DMESG.md §4).
type recLayout struct {
	size, ts, len, textLen int
}

// structuredLayout reads the record header layout. The first 3.5 kernels
// exported no SIZE or OFFSET for it; their struct log is the 16-byte header
// of doc/DMESG.md §4, used as the default.
func structuredLayout(info *VMCOREINFO) (recLayout, keys) {
	k := keys{info: info}
	h := recLayout{
		size:    k.size(16, "printk_log", "log"),
		ts:      k.offset(0, "printk_log.ts_nsec", "log.ts_nsec"),
		len:     k.offset(8, "printk_log.len", "log.len"),
		textLen: k.offset(10, "printk_log.text_len", "log.text_len"),
	}
	if k.bad == nil && (h.size == 0 || !fits(h.ts, 8, h.size) || !fits(h.len, 2, h.size) || !fits(h.textLen, 2, h.size)) {
		k.bad = &CorruptError{Field: "SIZE(printk_log)", Value: uint64(h.size),
			Msg: "record header does not hold its fields"}
	}
	return h, k
}

// readStructured reads the structured log: log_buf, log_buf_len and the
// indices of the first and next records (doc/DMESG.md §4).
func readStructured(k *kmem, info *VMCOREINFO) (*Log, error) {
	h, ks := structuredLayout(info)
	bufSym, lenSym := ks.symbol("log_buf"), ks.symbol("log_buf_len")
	firstSym, nextSym := ks.symbol("log_first_idx"), ks.symbol("log_next_idx")
	if err := ks.err(Structured); err != nil {
		return nil, err
	}
	buf, err := k.ulong("log_buf", bufSym)
	if err != nil {
		return nil, err
	}
	blen, err := k.uint("log_buf_len", lenSym, 4)
	if err != nil {
		return nil, err
	}
	first, err := k.uint("log_first_idx", firstSym, 4)
	if err != nil {
		return nil, err
	}
	next, err := k.uint("log_next_idx", nextSym, 4)
	if err != nil {
		return nil, err
	}
	if blen == 0 || blen > MaxRead {
		return nil, &CorruptError{Layout: Structured, Field: "log_buf_len", Value: blen,
			Msg: fmt.Sprintf("outside (0, %d]", MaxRead)}
	}
	ring, err := k.virt("log_buf", buf, int(blen))
	if err != nil {
		return nil, err
	}
	recs, err := h.decode(ring, first, next)
	return &Log{Layout: Structured, Records: recs}, err
}

// decode walks the records from index first to index next. A record whose
// len is 0 marks the end of the buffer: the walk continues at index 0. The
// walk stops with a *CorruptError on an index outside the buffer, a record
// that overruns it, or a second wrap, returning the records before it.
func (h recLayout) decode(ring []byte, first, next uint64) ([]Record, error) {
	blen := uint64(len(ring))
	hdr := uint64(h.size)
	bad := func(field string, v uint64, msg string) error {
		return &CorruptError{Layout: Structured, Field: field, Value: v, Msg: msg}
	}
	if hdr > blen {
		return nil, bad("log_buf_len", blen, "smaller than one record header")
	}
	if first > blen-hdr || next > blen-hdr {
		return nil, bad("log_first_idx/log_next_idx", first<<32|next, "index outside log_buf")
	}
	var recs []Record
	wrapped := false
	for idx := first; idx != next; {
		r := idx
		l := leUint(ring, int(r)+h.len, 2)
		if l == 0 {
			if wrapped {
				return recs, bad("idx", r, "second wrap: cycle in log_buf")
			}
			wrapped = true
			r = 0
			l = leUint(ring, h.len, 2)
		}
		tl := leUint(ring, int(r)+h.textLen, 2)
		if l < hdr || r+hdr+tl > blen {
			return recs, bad("idx", r, fmt.Sprintf("record (len %d, text_len %d) overruns log_buf", l, tl))
		}
		recs = append(recs, Record{TsNsec: leUint(ring, int(r)+h.ts, 8), Text: ring[r+hdr : r+hdr+tl]})
		idx = r + l
		if idx > blen-hdr {
			return recs, bad("idx", idx, "index outside log_buf")
		}
	}
	return recs, nil
}
